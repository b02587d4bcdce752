// Command sidetrace-bench measures what the sidetrace inbound hop costs: it is the upstream, the OTLP
// receiver, the load generator and the driver that runs them against each scenario and prints a table.
//
//	sidetrace-bench upstream -addr 127.0.0.1:8081 -size 1024
//	sidetrace-bench receiver -addr 127.0.0.1:4318
//	sidetrace-bench load -url http://127.0.0.1:8081/ -c 32 -d 5s          # closed loop
//	sidetrace-bench load -url http://127.0.0.1:8081/ -rate 5000 -d 5s      # open loop
//	sidetrace-bench run -sidetrace ./sidetrace                             # the whole benchmark
//
// The driver starts every other role as a child process (this same binary), so that each can be pinned
// to a CPU with taskset and measured from /proc on its own. BENCH_QUICK=1 makes run a short smoke run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: sidetrace-bench COMMAND [flags]

commands:
  upstream   serve every request with a fixed-size body (HTTP/1.1 keep-alive and h2c prior knowledge)
  receiver   accept OTLP/HTTP trace exports, count requests and spans, answer 200
  load       generate load: closed loop (-c, -d) or open loop (-rate, -d); prints one result
  run        the benchmark driver: direct vs proxied scenarios, printed as a Markdown table

Run "sidetrace-bench COMMAND -h" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(runMain(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// runMain dispatches to a command and returns the process exit code.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"upstream": cmdUpstream,
		"receiver": cmdReceiver,
		"load":     cmdLoad,
		"run":      cmdRun,
	}
	name := args[0]
	if name == "-h" || name == "-help" || name == "--help" || name == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "sidetrace-bench: unknown command %q\n\n%s", name, usage)
		return 2
	}
	if err := cmd(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "sidetrace-bench %s: %v\n", name, err)
		return 1
	}
	return 0
}

// newFlagSet returns a flag set for a command that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sidetrace-bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
