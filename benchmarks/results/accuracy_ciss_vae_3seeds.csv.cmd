python benchmarks/accuracy.py --seeds 0 1 2 --methods CISS-VAE --jobs 2 --csv /tmp/bench/ciss3.csv --out /tmp/bench/ciss3.md
847.4
