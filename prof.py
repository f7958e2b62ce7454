import cProfile, pstats, time, sys
from pathlib import Path
from etl.loads import load_source
db = Path("/tmp/prof/prof.duckdb")
t=time.perf_counter(); load_source(db, "vcf", Path("/tmp/prof/b1.vcf")); print("first", time.perf_counter()-t)
pr = cProfile.Profile(); pr.enable()
for i in (2,3,4,5):
    t=time.perf_counter(); load_source(db, "vcf", Path(f"/tmp/prof/b{i}.vcf")); print(i, time.perf_counter()-t)
pr.disable()
pstats.Stats(pr).sort_stats("cumulative").print_stats(45)
