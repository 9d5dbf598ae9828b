// Command balance prints account balances of a ledgerlite file. It is a
// second implementation of `ledgerlite balance`, used to cross-check the C
// parser on large files.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

type posting struct {
	account string
	cents   int64
	elided  bool
}

func parseCents(s string) (int64, error) {
	s = strings.ReplaceAll(s, ",", "")
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if f < 0 {
		return int64(f*100 - 0.5), nil
	}
	return int64(f*100 + 0.5), nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: balance FILE")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()

	totals := map[string]int64{}
	var txn []posting
	flush := func() {
		var sum int64
		elided := -1
		for i, p := range txn {
			if p.elided {
				elided = i
			} else {
				sum += p.cents
			}
		}
		if elided >= 0 {
			txn[elided].cents = -sum
		}
		for _, p := range txn {
			totals[p.account] += p.cents
		}
		txn = txn[:0]
	}

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ";") || strings.TrimSpace(line) == "":
		case line[0] >= '0' && line[0] <= '9':
			flush()
		default:
			fields := strings.Fields(line)
			p := posting{account: fields[0], elided: len(fields) < 2}
			if !p.elided {
				c, err := parseCents(fields[len(fields)-1])
				if err != nil {
					fmt.Fprintf(os.Stderr, "bad amount %q\n", line)
					os.Exit(1)
				}
				p.cents = c
			}
			txn = append(txn, p)
		}
	}
	flush()

	accounts := make([]string, 0, len(totals))
	for a := range totals {
		accounts = append(accounts, a)
	}
	sort.Strings(accounts)
	for _, a := range accounts {
		fmt.Printf("%14.2f  %s\n", float64(totals[a])/100, a)
	}
}
