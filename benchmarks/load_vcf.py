"""VCF load throughput against DuckDB's own CSV reader on the same records (the ceiling).

    python -m benchmarks.load_vcf --records 1000000

Writes a synthetic VEP-annotated VCF (2 CSQ entries per record, one sample), loads it with cgdw (oxbow
parsing, pandera validation, quarantine, bulk inserts) in a child process that reports its own peak
RSS, then times `CREATE TABLE AS SELECT * FROM read_csv(...)` of the same records flattened to TSV
(one row per record: fixed fields, the CSQ string, GT, AD, DP) and prints records/s and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

CSQ = (
    "Allele|Consequence|IMPACT|SYMBOL|Gene|Feature_type|Feature|BIOTYPE|EXON|INTRON|HGVSc|HGVSp|"
    "cDNA_position|CDS_position|Protein_position|Amino_acids|Codons|Existing_variation|DISTANCE|STRAND|"
    "FLAGS|CANONICAL|MANE_SELECT"
)
HEADER = f"""##fileformat=VCFv4.2
##reference=GRCh37
##contig=<ID=7,length=159138663>
##VEP="v106"
##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">
##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. Format: {CSQ}">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1
"""
MANIFEST = (
    "sample_id\ttrial_group\tpatient_id\tsample_type\ttissue\tdays_from_diagnosis\tassay\tassay_version\t"
    "assembly\tpipeline_version\nS1\tGRAALL\tG03-00001\tdiagnosis\tBM\t0\tTALL80\t1\tGRCh37\tbench\n"
)
CLINICAL = (
    "NUM_PATIENT;PROTOCOLE;SEXE;AGE_DIAG;DATE_DIAG;DIAGNOSTIC;GB_MM3;ATTEINTE_SNC;MASSE_MEDIASTINALE;"
    "CORTICOSENSIBILITE;RC_INDUCTION;DATE_RC;ALLOGREFFE_RC1;DATE_ALLOGREFFE;DATE_RECHUTE;DATE_RECHUTE_2;"
    "STATUT_VITAL;DATE_DECES;CAUSE_DECES;DATE_DERNIERES_NOUVELLES;CONSENTEMENT\n"
    "G03-00001;GRAALL-2003;M;23,5;12/03/2004;LAL-T;74100;NON;OUI;CORTICOSENSIBLE;OUI;15/04/2004;NON;;;;"
    "VIVANT;;;01/06/2010;OUI\n"
)


def records(n: int, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    bases = np.array(list("ACGT"))
    ref = bases[rng.integers(0, 4, n)]
    alt = bases[(np.searchsorted(bases, ref) + rng.integers(1, 4, n)) % 4]
    pos = np.sort(rng.choice(np.arange(1, 150_000_000), size=n, replace=False))
    alt_depth = rng.integers(3, 60, n)
    depth = alt_depth + rng.integers(20, 200, n)
    return pl.DataFrame({"pos": pos, "ref": ref, "alt": alt, "ad": alt_depth, "dp": depth}).with_columns(
        pl.format(
            "{}|missense_variant|MODERATE|IKZF1|ENSG00000185811|Transcript|ENST00000331340.8|protein_coding|5/8"
            "||ENST00000331340.8:c.476A>G|ENSP00000331614.3:p.Asn159Ser|500|476|159|N/S|aAt/aGt|||1||YES|"
            "NM_006060.6,{}|intron_variant|MODIFIER|IKZF1|ENSG00000185811|Transcript|ENST00000346667.8|"
            "protein_coding||4/7||||||||||1|||",
            pl.col("alt"),
            pl.col("alt"),
        ).alias("csq"),
        pl.format("0/1:{},{}:{}", pl.col("dp") - pl.col("ad"), pl.col("ad"), pl.col("dp")).alias("sample"),
    )


def write_inputs(frame: pl.DataFrame, vcf: Path, tsv: Path) -> None:
    body = frame.select(
        pl.lit("7").alias("CHROM"), "pos", pl.lit(".").alias("ID"), "ref", "alt", pl.lit(".").alias("QUAL"),
        pl.lit("PASS").alias("FILTER"), pl.format("DP={};CSQ={}", pl.col("dp"), pl.col("csq")).alias("INFO"),
        pl.lit("GT:AD:DP").alias("FORMAT"), pl.col("sample").alias("S1"),
    )  # fmt: skip
    with open(vcf, "w") as handle:
        handle.write(HEADER)
        handle.write(body.write_csv(separator="\t", include_header=False, quote_style="never"))
    frame.select(
        pl.lit("7").alias("chrom"), "pos", "ref", "alt", pl.lit("PASS").alias("filter"), "csq",
        pl.lit("0/1").alias("gt"), "ad", "dp",
    ).write_csv(tsv, separator="\t", quote_style="never")  # fmt: skip


def child_load(db: str, vcf: str) -> None:
    """Runs in its own process: the load alone, then its peak RSS."""
    import resource

    from etl.sources.registry import load_source

    started = time.perf_counter()
    report = load_source(Path(db), "vcf", Path(vcf))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"seconds": seconds, "rows": report.rows_read, "rejected": report.rows_rejected, "peak_mib": peak}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cgdw-bench-vcf-") as tmp:
        vcf, tsv, db = Path(tmp) / "bench.vcf", Path(tmp) / "bench.tsv", Path(tmp) / "bench.duckdb"
        write_inputs(records(args.records), vcf, tsv)
        print(f"VCF {args.records:,} records, {vcf.stat().st_size / 2**20:.0f} MiB")

        env = {**os.environ, "CGDW_PSEUDONYM_KEY": "benchmark-key-0123456789"}
        setup = f"""
from pathlib import Path
from etl.sources.registry import load_source
from schema import database
database.upgrade(Path({str(db)!r}))
Path({tmp!r}, 'g.csv').write_bytes({CLINICAL!r}.encode('latin-1'))
Path({tmp!r}, 'm.tsv').write_text({MANIFEST!r})
load_source(Path({str(db)!r}), 'clinical', Path({tmp!r}, 'g.csv'), layout='graall')
load_source(Path({str(db)!r}), 'samples', Path({tmp!r}, 'm.tsv'))
"""
        subprocess.run([sys.executable, "-c", setup], check=True, env=env)
        result = subprocess.run(
            [sys.executable, "-c",
             f"from benchmarks.load_vcf import child_load; child_load({str(db)!r}, {str(vcf)!r})"],
            check=True, env=env, capture_output=True, text=True,
        )  # fmt: skip
        ours = json.loads(result.stdout.strip().splitlines()[-1])

        con = duckdb.connect()
        started = time.perf_counter()
        con.execute(
            f"CREATE TABLE flat AS SELECT * FROM read_csv('{tsv}', delim='\t', header=true, quote='')"
        )
        ceiling = time.perf_counter() - started
        assert con.execute("SELECT count(*) FROM flat").fetchall()[0][0] == args.records

        print(
            f"cgdw load vcf:  {ours['seconds']:.2f} s, {ours['rows'] / ours['seconds']:,.0f} records/s, "
            f"{ours['rejected']} rejected, peak RSS {ours['peak_mib']:.0f} MiB"
        )
        print(
            f"DuckDB read_csv of the flattened TSV (ceiling): {ceiling:.2f} s, "
            f"{args.records / ceiling:,.0f} records/s"
        )
        print(f"ratio to the ceiling: {ceiling / ours['seconds']:.2f}x (target >= 0.25x)")


if __name__ == "__main__":
    main()
