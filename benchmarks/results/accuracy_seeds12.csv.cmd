python benchmarks/accuracy.py --seeds 1 2 --miceforest-iterations 2 --jobs 2 --csv /tmp/bench/seeds12.csv --out /tmp/bench/seeds12.md
2644.7
