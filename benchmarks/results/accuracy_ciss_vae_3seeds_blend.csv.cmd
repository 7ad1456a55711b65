python benchmarks/accuracy.py --seeds 0 1 2 --methods CISS-VAE --jobs 2 --csv /tmp/bench/ciss3_blend.csv --out /tmp/bench/ciss3_blend.md
989.8
