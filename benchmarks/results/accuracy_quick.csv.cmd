python benchmarks/accuracy.py --quick --csv /tmp/bench/quick.csv --out /tmp/bench/quick.md
2090.3
