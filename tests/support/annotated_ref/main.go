// Command annotated-ref is the reference for csv2lp's annotated-CSV input: it converts an
// annotated CSV (stdin) to line protocol (stdout) with InfluxData's own converter, the
// pkg/csv2lp package that `influx write` (and `influx write dryrun`) runs on CSV input.
//
// It does what `influx write dryrun --format csv` does with one file: the input, then a
// newline (influx-cli appends one to every input), through csv2lp.CsvToLineProtocol, copied
// to stdout. Timestamps come out in nanoseconds whatever --precision `influx write` is given:
// that is the package's behaviour, and the tests convert them to the precision compared.
//
// Exit status: 0 converted; 1 the converter stopped at an error (printed on stderr).
// With -skip-row-on-error, bad rows are logged on stderr and left out (influx write
// --skipRowOnError).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/influxdata/influxdb/v2/pkg/csv2lp"
)

func main() {
	skip := flag.Bool("skip-row-on-error", false, "log bad rows on stderr and go on (influx write --skipRowOnError)")
	flag.Parse()

	input := io.MultiReader(os.Stdin, strings.NewReader("\n"))
	lines := csv2lp.CsvToLineProtocol(input).SkipRowOnError(*skip)
	out := bufio.NewWriter(os.Stdout)
	_, err := io.Copy(out, lines)
	if flushErr := out.Flush(); err == nil {
		err = flushErr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "annotated-ref: %v\n", err)
		os.Exit(1)
	}
}
