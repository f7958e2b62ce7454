"""Generate docs/formats/<layout>.md from the layout files, so the format documentation cannot drift.

python -m etl.load.layout_docs docs/formats
"""

from __future__ import annotations

import sys
from pathlib import Path

from etl.load.layout import (
    DAYS_PER_MONTH,
    CodeList,
    DeclaredAttribute,
    FieldSpec,
    Layout,
    available_layouts,
    load_layout,
)

FIELD_MEANING = {
    "source_patient_id": "the trial's patient number (pseudonymised with HMAC at load, never stored)",
    "trial_group": "cooperative group whose trial database holds the patient",
    "protocol_code": "treatment protocol",
    "sex": "sex",
    "age_years": "age at diagnosis, years",
    "diagnosis_date": "date of diagnosis: the origin of every day offset; only its year is stored",
    "diagnosis_year": "year of diagnosis (for a source that gives no diagnosis date)",
    "diagnosis": "diagnosis",
    "wbc_g_per_l": "white blood cell count at diagnosis, stored as x10^9/L",
    "cns_involvement": "central nervous system involvement",
    "mediastinal_mass": "mediastinal mass",
    "prednisone_response": "response to the 7-day prednisone pre-phase",
    "complete_remission": "complete remission after induction",
    "cr_date": "date of complete remission",
    "hsct_in_cr1": "allogeneic stem cell transplantation in first CR",
    "hsct_date": "date of transplantation",
    "relapse_date": "date of first relapse",
    "second_relapse_date": "date of second relapse",
    "vital_status": "vital status at last news",
    "death_date": "date of death",
    "death_cause": "cause of death",
    "last_contact_date": "date of last news (equal to the death date for deceased patients)",
    "cr_day": "time from diagnosis to complete remission",
    "hsct_day": "time from diagnosis to transplantation",
    "relapse_day": "time from diagnosis to first relapse",
    "second_relapse_day": "time from diagnosis to second relapse",
    "death_day": "time from diagnosis to death",
    "last_contact_day": "time from diagnosis to last news (equal to the time to death for deceased patients)",
    "consent_status": "consent to research use",
    "tcr_status": "TCR status (immunogenotype)",
    "etp_status": "early T-cell precursor (ETP-ALL) classification",
    "oncogenetics_method": "method of the oncogenetic markers",
    "sample_key": "the sequencing laboratory's sample id (as in the VCF / MAF / SEG files)",
    "sample_type": "when the sample was taken",
    "tissue": "tissue sequenced",
    "collection_day": "days from diagnosis to sampling",
    "assay_name": "sequencing assay (capture panel) name",
    "assay_version": "assay version",
    "assembly": "genome assembly of the coordinates",
    "pipeline_version": "bioinformatics pipeline and version",
    "time_point": "protocol time point (MRD1 = post-induction in GRAALL/FRALLE; C2 = after AML cycle 2)",
    "day": "days from diagnosis to the MRD sample",
    "method": "method",
    "target": "rearrangement or marker followed",
    "value": "the measured level, in `unit`",
    "unit": "unit of value, limit of detection and quantitative range (normalised to a fraction on load)",
    "limit_of_detection": "limit of detection, in `unit`",
    "quantitative_range_low": "lower end of the quantitative range, in `unit`",
    "qualitative_result": "qualitative result as reported",
    "gene_symbol": "HGNC gene symbol",
    "first_exon": "first exon of the gene in the call",
    "last_exon": "last exon of the gene in the call",
    "chrom": "chromosome",
    "start": "start of the called range (1-based)",
    "end": "end of the called range (inclusive)",
    "call_type": "kind of copy-number change",
    "copy_number": "absolute copy number",
    "ratio": "copy ratio (MLPA probe ratio, or 2^log2 ratio)",
}


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|")


def _type(spec: FieldSpec, layout: Layout) -> str:
    if spec.type == "date":
        return f"date `{layout.date_format_label}`"
    if spec.type in ("code", "flag"):
        assert spec.codes is not None
        kind = "yes/no code" if spec.type == "flag" else "code"
        return f"{kind} {_code_link(spec.codes)}"
    if spec.type == "decimal" and spec.scale:
        return f"decimal, x {spec.scale:g} on load"
    if spec.type == "days":
        return "days since diagnosis"
    if spec.type == "months":
        return f"months since diagnosis (x {DAYS_PER_MONTH:g} days on load)"
    return spec.type


def _code_link(codes: CodeList) -> str:
    return f"[{codes.name}](#code-list-{codes.name})"


def _attribute_type(attribute: DeclaredAttribute, layout: Layout) -> str:
    """The attribute's type as a reader of the export needs it: how the cell is written."""
    codes = f", code list {_code_link(attribute.codes)}" if attribute.codes else ""
    if attribute.type == "date":
        return f"date `{layout.date_format_label}`, stored as days from diagnosis"
    if attribute.type == "day":
        return "days from diagnosis"
    if attribute.type == "boolean":
        return f"yes/no{codes or ' (yes/no, true/false, 1/0)'}"
    if attribute.scale:
        return f"{attribute.type}, x {attribute.scale:g} on load"
    return f"{attribute.type}{codes}"


def _attribute_values(attribute: DeclaredAttribute) -> str:
    """Its closed levels (code: label), or its unit."""
    if attribute.levels:
        return ", ".join(f"`{_cell(code)}` {_cell(label)}" for code, label in attribute.levels)
    return _cell(attribute.unit or "")


def _attributes(layout: Layout) -> list[str]:
    if not layout.attributes:
        return []
    lines = [
        "",
        "## Declared attributes",
        "",
        "The trial's own variables ([declaring.md](declaring.md)). Each is a typed column of",
        f"`cohort_patient` and a row of the data dictionary (table `attribute`, source `{layout.name}`). A",
        "categorical attribute's levels are closed; a value that cannot be read as its type is left out and",
        "quarantined, and the rest of the line loads.",
        "",
        "| source column | attribute | label | type | levels or unit | time point |",
        "|---|---|---|---|---|---|",
    ]
    for name, a in layout.attributes.items():
        lines.append(
            f"| `{a.column}` | `{name}` | {_cell(a.label)} | {_attribute_type(a, layout)} | "
            f"{_attribute_values(a)} | {_cell(a.time_point or '')} |"
        )
    return lines


def _protocols(layout: Layout) -> list[str]:
    if not layout.protocols:
        return []
    lines = [
        "",
        "## Declared protocols",
        "",
        "Registered on load when the warehouse does not know them (a protocol already there stays as it is).",
        "",
        "| protocol | trial group | population | disease | registry id | title |",
        "|---|---|---|---|---|---|",
    ]
    for p in layout.protocols:
        lines.append(
            f"| `{p.code}` | {p.trial_group} | {p.population} | {p.disease} | {p.registry_id or ''} | "
            f"{_cell(p.title or '')} |"
        )
    return lines


def render(layout: Layout) -> str:
    file_kind = f"xlsx workbook, sheet {layout.sheet!r}" if layout.file_format == "xlsx" else "delimited text"
    lines = [
        f"# Source layout `{layout.name}`",
        "",
        f"Generated from `etl/sources/layouts/{layout.name}.toml` by `python -m etl.load.layout_docs`: "
        "edit the TOML.",
        "",
        layout.description + ".",
        "",
        "| property | value |",
        "|---|---|",
        f"| kind | {layout.kind} (`cgdw load {layout.kind}`) |",
        f"| file | {file_kind} |",
    ]
    if layout.file_format == "csv":
        delimiter = {"\t": "tab", ";": "semicolon", ",": "comma"}.get(
            layout.delimiter, repr(layout.delimiter)
        )
        lines += [f"| delimiter | {delimiter} |", f"| encoding | {layout.encoding} |"]
    lines += [
        f"| decimal mark | {'comma' if layout.decimal_comma else 'point'} |",
        f"| thousands separator | {_separator(layout.thousands_separator)} |",
        f"| dates | {_dates(layout)} |",
        f"| export date | {_export_date(layout)} |",
        f"| trial group | {layout.trial_group or 'per row (column trial_group)'} |",
        "",
        "The header row is line 1. Every column below must be present and no other column may be",
        "(unless listed as ignored), so nothing is dropped silently. Empty cells mean missing. Columns that",
        "look like direct identifiers (names, initials, birth dates, hospital numbers, addresses) refuse",
        "the whole file.",
        "",
        "## Columns",
        "",
        "| source column | canonical field | meaning | type | required |",
        "|---|---|---|---|---|",
    ]
    for name, spec in layout.fields.items():
        meaning, required = FIELD_MEANING.get(name, ""), "yes" if spec.required else ""
        lines.append(f"| `{spec.column}` | `{name}` | {meaning} | {_type(spec, layout)} | {required} |")
    for marker, spec in layout.markers.items():
        lines.append(
            f"| `{spec.column}` | marker `{marker}` | oncogenetic marker result | {_type(spec, layout)} | |"
        )
    lines += _attributes(layout) + _protocols(layout)
    lines += ["", "## Code lists", "", "Codes match case-insensitively after trimming spaces."]
    for name, code_list in layout.code_lists.items():
        lines += ["", f"### Code list {name}", ""]
        if code_list.open:
            lines += [
                "Open: a code not listed is kept as written (trimmed) and flagged in a warning on the run,",
                "never rejected.",
                "",
            ]
        lines += ["| source code | stored as |", "|---|---|"]
        lines += [
            f"| `{_cell(k)}` | {_cell(v).lower() if isinstance(v, bool) else _cell(v)} |"
            for k, v in code_list.mapping.items()
        ]
        lines += [f"| `{_cell(m)}` | NULL (not evaluated / unknown) |" for m in code_list.missing]
    return "\n".join(lines) + "\n"


def _dates(layout: Layout) -> str:
    """The date format, or that a trial export sends none (its times are counted from diagnosis)."""
    dated = [s for s in (*layout.fields.values(), *layout.markers.values()) if s.type == "date"]
    if layout.kind != "clinical" or dated or any(a.type == "date" for a in layout.attributes.values()):
        return layout.date_format_label
    return "none: times are sent as days or months since diagnosis"


def _separator(mark: str | None) -> str:
    if mark is None:
        return "none (a number holding the other mark is ambiguous: quarantined, rule `number:ambiguous`)"
    return {".": "point", ",": "comma", " ": "space", "'": "apostrophe"}.get(mark, repr(mark))


def _export_date(layout: Layout) -> str:
    if layout.export_date_pattern is None:
        return "from `--export-date` only (else unknown, not compared)"
    return (
        f"from the file name, `{layout.export_date_pattern.pattern}` ({layout.export_date_format_label}), "
        "or `--export-date`"
    )


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in available_layouts():
        (out_dir / f"{name}.md").write_text(render(load_layout(name)))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/formats"))
