module example.org/ledgerlite/tools/balance

go 1.21
