// Command ferretdb serves FerretDB's embeddable MongoDB wire server on one TCP address.
//
// It is a module of lanegate's own rather than `go install .../cmd/ferretdb@v1.24.2`:
// FerretDB's own command panics at start ("Invalid build/version/version.txt") when built
// as the main module outside its repository, while the embeddable package runs as is.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	handler := flag.String("handler", "sqlite", "backend: postgresql or sqlite")
	pg := flag.String("postgresql-url", "", "PostgreSQL URL for the postgresql handler")
	sqlite := flag.String("sqlite-url", "file:data/", "SQLite directory URI for the sqlite handler")
	level := flag.String("log-level", "warn", "log level: debug, info, warn or error")
	flag.Parse()

	var logLevel slog.Level
	if err := logLevel.UnmarshalText([]byte(*level)); err != nil {
		log.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listen},
		Logger:        logger,
		Handler:       *handler,
		PostgreSQLURL: *pg,
		SQLiteURL:     *sqlite,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}
