"""Source kinds: one module per kind of file (GENIE's registry of file types), listed in `registry`.

Layout-driven tables: `clinical` (trial exports), `lab`, `samples` (sequencing manifests), `mrd`, `cnv`
(gene-level copy-number calls). Standard formats: `vcf`, `maf`, `seg`. Code two kinds share lives in a
shared module, never in one of them: `variants` (VCF and MAF), `copy_number` (calls, SEG, cBioPortal CNA).
A loader never imports another loader (an import-linter contract in pyproject.toml).
"""
