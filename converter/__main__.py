"""`python -m converter`: what Telegraf's execd runs when csv2lp is not on its PATH."""

from .console import main

main()
