module csv2lp.local/annotatedref

go 1.21

require github.com/influxdata/influxdb/v2 v2.0.7

require golang.org/x/text v0.3.5 // indirect
