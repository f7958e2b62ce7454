"""Any cohort through a layout, without code: a trial's own variables ([attributes]), its protocols
([[protocols]]), open code lists, times sent as days or months since diagnosis, and the cross-field rules
that withhold one fact of a patient instead of the whole patient. Real DuckDB files, real migrations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from etl.errors import CgdwError
from etl.load.framework import LoadReport
from etl.load.layout import load_layout
from etl.sources.registry import load_source
from etl.views import apply_views
from tests.helpers import ALIVE, DEAD, GRAALL_HEADER, REFRACTORY, REPO, query, scalar, write_graall

LAYOUTS = REPO / "etl" / "sources" / "layouts"
GRAALL_TOML = (LAYOUTS / "graall.toml").read_text(encoding="utf-8")
LAB_TOML = (LAYOUTS / "lab.toml").read_text(encoding="utf-8")
AML_COLUMNS = load_layout("hovon_aml").source_columns

# Three patients of the packaged AML layout (etl/sources/layouts/hovon_aml.toml): times since diagnosis in
# days and months, no dates; ELN 2017 risk, FLT3-ITD, NPM1, the arm and the marrow blasts are attributes.
AML_PATIENT = {
    "PATNO": "H-001", "STUDY": "HO132", "SEX": "F", "AGE": "54.5", "YEAR_DX": "2015", "DIAGNOSIS": "AML",
    "WBC": "12.5", "CR1": "Y", "DAYS_TO_CR": "31", "ALLO_CR1": "N", "DAYS_TO_ALLO": "",
    "MONTHS_TO_RELAPSE": "10.5", "STATUS": "DEAD", "MONTHS_TO_DEATH": "14.2", "MONTHS_FOLLOW_UP": "14.2",
    "CONSENT": "Y", "ELN2017": "ADV", "FLT3_ITD": "POS", "NPM1": "NEG", "ARM": "A", "BM_BLASTS": "62.5",
}  # fmt: skip
AML_SECOND = {
    **AML_PATIENT, "PATNO": "H-002", "SEX": "", "AGE": "", "YEAR_DX": "", "DIAGNOSIS": "RAEB",
    "ALLO_CR1": "Y", "DAYS_TO_ALLO": "120", "MONTHS_TO_RELAPSE": "", "STATUS": "ALIVE", "MONTHS_TO_DEATH": "",
    "MONTHS_FOLLOW_UP": "48", "ELN2017": "fav", "FLT3_ITD": "NEG", "NPM1": "POS", "ARM": "b", "BM_BLASTS": "",
}  # fmt: skip
AML_THIRD = {
    **AML_SECOND,
    "PATNO": "H-003",
    "DIAGNOSIS": "AML",
    "ELN2017": "NE",
    "FLT3_ITD": "ND",
    "ARM": "A",
}


def write_aml(path: Path, *patients: dict[str, str]) -> Path:
    rows = [",".join(AML_COLUMNS), *(",".join(p[c] for c in AML_COLUMNS) for p in patients)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def load_aml(db: Path, path: Path) -> LoadReport:
    return load_source(db, "clinical", path, layout="hovon_aml")


def graall_line(row: str, **cells: str) -> str:
    """A GRAALL export line with some cells changed, by column name."""
    columns, values = GRAALL_HEADER.split(";"), row.split(";")
    for column, value in cells.items():
        values[columns.index(column)] = value
    return ";".join(values)


def rejected(db: Path, run_id: int | None) -> list[tuple[object, ...]]:
    return query(
        db,
        "SELECT line, column_name, value, rule FROM rejected_record WHERE etl_run_id = $run ORDER BY ALL",
        {"run": run_id},
    )


# --- declared attributes become columns of cohort_patient --------------------------------------------


def test_an_aml_trials_own_variables_are_columns_of_cohort_patient(db_path: Path, tmp_path: Path) -> None:
    report = load_aml(db_path, write_aml(tmp_path / "hovon.csv", AML_PATIENT, AML_SECOND, AML_THIRD))
    assert (report.rows_loaded, report.rows_rejected, report.fact_issues.height) == (3, 0, 0)
    apply_views(db_path)

    rows = query(
        db_path,
        "SELECT eln_risk, flt3_itd, npm1_mutated, treatment_arm, bm_blasts_pct FROM cohort_patient "
        "ORDER BY patient_id",
    )
    # Codes are translated by the code list (ADV -> adv), levels matched case-insensitively (b -> B),
    # 'not evaluated' codes (NE, ND) and empty cells are no value at all.
    assert rows == [
        ("adv", True, False, "A", 62.5),
        ("fav", False, True, "B", None),
        (None, None, True, "A", None),
    ]


def test_the_dictionary_describes_each_attribute_with_its_source(db_path: Path, tmp_path: Path) -> None:
    report = load_aml(db_path, write_aml(tmp_path / "hovon.csv", AML_PATIENT))
    dictionary = query(
        db_path,
        "SELECT attribute_name, entity, label, data_type, unit, levels, time_point, source, source_column, "
        "etl_run_id FROM attribute ORDER BY attribute_name",
    )
    by_name = {row[0]: row[1:] for row in dictionary}
    assert sorted(by_name) == ["bm_blasts_pct", "eln_risk", "flt3_itd", "npm1_mutated", "treatment_arm"]
    entity, label, data_type, unit, levels, time_point, source, column, run = by_name["eln_risk"]
    assert (entity, label, data_type, unit, time_point) == (
        "patient",
        "ELN 2017 genetic risk",
        "categorical",
        None,
        "diagnosis",
    )
    assert json.loads(str(levels)) == [
        {"code": "fav", "label": "Favourable"},
        {"code": "int", "label": "Intermediate"},
        {"code": "adv", "label": "Adverse"},
    ]
    assert (source, column, run) == ("hovon_aml", "ELN2017", report.run_id)
    assert by_name["flt3_itd"][1:3] == ("FLT3-ITD", "boolean")
    assert by_name["bm_blasts_pct"][2:4] == ("number", "%")


def test_every_attribute_value_keeps_its_lineage(db_path: Path, tmp_path: Path) -> None:
    report = load_aml(db_path, write_aml(tmp_path / "hovon.csv", AML_PATIENT, AML_SECOND))
    lineage = query(
        db_path,
        "SELECT v.attribute_name, v.value_text, v.value_number, v.value_boolean, v.source_line, "
        "v.etl_run_id, f.file_name FROM attribute_value AS v JOIN source_file AS f USING (source_file_id) "
        "WHERE v.attribute_name IN ('eln_risk', 'flt3_itd', 'bm_blasts_pct') ORDER BY 5, 1",
    )
    run = report.run_id
    assert lineage == [
        ("bm_blasts_pct", None, 62.5, None, 2, run, "hovon.csv"),
        ("eln_risk", "adv", None, None, 2, run, "hovon.csv"),
        ("flt3_itd", None, None, True, 2, run, "hovon.csv"),
        ("eln_risk", "fav", None, None, 3, run, "hovon.csv"),
        ("flt3_itd", None, None, False, 3, run, "hovon.csv"),
    ]


def test_a_corrected_value_supersedes_the_old_one_which_is_kept(db_path: Path, tmp_path: Path) -> None:
    first = load_aml(db_path, write_aml(tmp_path / "hovon_1.csv", AML_PATIENT))
    second = load_aml(db_path, write_aml(tmp_path / "hovon_2.csv", {**AML_PATIENT, "ELN2017": "INT"}))
    history = query(
        db_path,
        "SELECT value_text, etl_run_id, superseded_by_run_id FROM attribute_value "
        "WHERE attribute_name = 'eln_risk' ORDER BY etl_run_id",
    )
    assert history == [("adv", first.run_id, second.run_id), ("int", second.run_id, None)]
    assert second.tables["attribute_value"] == {"inserted": 1, "superseded": 1, "unchanged": 4}


def test_a_value_its_type_cannot_hold_withholds_that_value_only(db_path: Path, tmp_path: Path) -> None:
    bad = {**AML_PATIENT, "ELN2017": "VERY-ADV", "BM_BLASTS": "sixty", "FLT3_ITD": "maybe"}
    report = load_aml(db_path, write_aml(tmp_path / "hovon.csv", bad))
    # The patient loads, with every other fact and attribute ...
    assert (report.rows_loaded, report.rows_rejected) == (1, 0)
    assert query(db_path, "SELECT attribute_name FROM attribute_value ORDER BY 1") == [
        ("npm1_mutated",),
        ("treatment_arm",),
    ]
    assert scalar(db_path, "SELECT count(*) FROM outcome_event") == 3
    # ... and each value left out is quarantined with its line, column, value and rule.
    assert rejected(db_path, report.run_id) == [
        (2, "BM_BLASTS", "sixty", "attribute:number"),
        (2, "ELN2017", "VERY-ADV", "attribute:categorical"),
        (2, "FLT3_ITD", "maybe", "attribute:boolean"),
    ]
    message = scalar(db_path, "SELECT message FROM rejected_record WHERE column_name = 'ELN2017'")
    assert message == "ELN2017 = 'VERY-ADV': eln_risk is categorical, expected one of FAV, INT, ADV"
    raw = json.loads(
        str(scalar(db_path, "SELECT raw_record FROM rejected_record WHERE column_name = 'ELN2017'"))
    )
    assert raw["PATNO"] == "H-001"
    assert "3 values withheld from loaded rows" in report.summary()


def test_a_decimal_comma_layout_reads_attribute_numbers_its_way(db_path: Path, tmp_path: Path) -> None:
    """A GRAALL export (decimal commas, dd/mm/yyyy) with two attributes: the blasts in its number format,
    and a date, stored as days from diagnosis (no date is stored)."""
    layout = tmp_path / "graall_extra.toml"
    layout.write_text(
        GRAALL_TOML
        + """
[attributes.bm_blasts_pct]
column = "BLASTES_MO"
type = "number"
unit = "%"
label = "Bone marrow blasts"

[attributes.mrd1_day]
column = "DATE_MRD1"
type = "date"
label = "MRD1 sampling"
"""
    )
    header = GRAALL_HEADER + ";BLASTES_MO;DATE_MRD1"
    export = write_graall(tmp_path / "graall.csv", ALIVE + ";87,5;12/04/2004", header=header)
    report = load_source(db_path, "clinical", export, layout=layout)
    assert report.rows_loaded == 1
    values = query(db_path, "SELECT attribute_name, value_number FROM attribute_value ORDER BY 1")
    assert values == [("bm_blasts_pct", 87.5), ("mrd1_day", 31.0)]  # 12/03/2004 -> 12/04/2004
    assert scalar(db_path, "SELECT data_type FROM attribute WHERE attribute_name = 'mrd1_day'") == "day"


def test_a_laboratory_layout_declares_attributes_too(db_path: Path, tmp_path: Path) -> None:
    """Two sources give different attributes of one patient: neither supersedes the other's."""
    load_aml(db_path, write_aml(tmp_path / "hovon.csv", AML_PATIENT))
    layout = tmp_path / "aml_lab.toml"
    layout.write_text(
        LAB_TOML.replace('name = "lab"', 'name = "aml_lab"').replace(
            '"FRALLE" = "FRALLE"', '"FRALLE" = "FRALLE", "HOVON-SAKK" = "HOVON-SAKK"'
        )
        + '\n[attributes.complex_karyotype]\ncolumn = "complex_karyotype"\ntype = "boolean"\n'
        'label = "Complex karyotype"\n'
    )
    header = "trial_group\tpatient_id\ttcr_status\tetp_status\toncogenetics_method\tTLX1\tTLX3\tSIL-TAL1"
    lab = tmp_path / "lab.tsv"
    lab.write_text(f"{header}\tCALM-AF10\tHOXA\tcomplex_karyotype\nHOVON-SAKK\tH-001\t\t\t\t\t\t\t\t\tyes\n")
    report = load_source(db_path, "lab", lab, layout=layout)
    assert report.tables["attribute_value"] == {"inserted": 1, "superseded": 0, "unchanged": 0}
    load_aml(db_path, write_aml(tmp_path / "hovon_2.csv", {**AML_PATIENT, "ARM": "B"}))
    current = query(
        db_path,
        "SELECT a.source, v.attribute_name FROM attribute_value AS v JOIN attribute AS a USING "
        "(attribute_name) WHERE v.superseded_by_run_id IS NULL AND v.attribute_name IN "
        "('complex_karyotype', 'treatment_arm') ORDER BY 1",
    )
    assert current == [("aml_lab", "complex_karyotype"), ("hovon_aml", "treatment_arm")]


# --- declarations are checked when the layout is read ------------------------------------------------


def layout_with(tmp_path: Path, extra: str, base: str = GRAALL_TOML) -> Path:
    path = tmp_path / "declaring.toml"
    path.write_text(base + "\n" + extra)
    return path


@pytest.mark.parametrize(
    ("declaration", "problem"),
    [
        ('[attributes.ELN]\ncolumn = "X"\ntype = "text"', "attribute ELN: a name is snake_case"),
        (
            '[attributes.age]\ncolumn = "X"\ntype = "number"',
            "attribute age: cohort_patient already has a column of that name",
        ),
        ('[attributes.risk]\ncolumn = "X"\ntype = "ordinal"', "attribute risk: type 'ordinal' is not one of"),
        (
            '[attributes.risk]\ncolumn = "X"\ntype = "categorical"',
            "a categorical attribute needs levels, or codes",
        ),
        (
            '[attributes.risk]\ncolumn = "X"\ntype = "categorical"\ncodes = "sexe"\nlevels = [{code = "M"}]',
            "code list sexe maps to F, not among its levels",
        ),
        ('[attributes.risk]\ncolumn = "X"\ntype = "text"\nunit = "%"', "unit applies to number and integer"),
        ('[attributes.risk]\ncolumn = "X"\ntype = "text"\nentity = "sample"', "a layout declares patient"),
        ('[attributes.risk]\ncolumn = "SEXE"\ntype = "text"', "column SEXE is already mapped to field sex"),
        (
            '[attributes.risk]\ncolumn = "X"\ntype = "boolean"\ncodes = "sexe"',
            "must map each source code to true",
        ),
        ('[attributes.risk]\ncolumn = "X"\ntype = "text"\nlable = "Risk"', "unknown keys lable"),
        (
            '[attributes.risk]\ncolumn = "X"\ntype = "categorical"\nlevels = [{code = "B"}, {code = "b"}]',
            "levels must list each code once (codes match whatever their case",
        ),
        ('[attributes.risk]\ntype = "text"', "attribute risk: column (the source column) must be given"),
        (
            '[[protocols]]\ncode = "GRAALL-2014"\npopulation = "adults"\ndisease = "ALL"',
            "population 'adults'",
        ),
        (
            '[[protocols]]\ncode = "GRAALL-2014"\npopulation = "adult"',
            "protocol GRAALL-2014: disease must be",
        ),
    ],
)
def test_a_wrong_declaration_is_refused_naming_the_layout_file(
    tmp_path: Path, declaration: str, problem: str
) -> None:
    path = layout_with(tmp_path, declaration)
    with pytest.raises(CgdwError, match="declaring.toml: invalid layout: .*" + re.escape(problem)):
        load_layout(path)


def test_only_a_field_whose_values_are_open_may_have_an_open_code_list(tmp_path: Path) -> None:
    path = layout_with(
        tmp_path,
        "",
        GRAALL_TOML.replace('map = { "M" = "M", "F" = "F" }', 'map = { "M" = "M" }\nopen = true'),
    )
    with pytest.raises(
        CgdwError, match="field sex: code list sexe is open, but only the code lists of diagnosis"
    ):
        load_layout(path)


# --- protocols as configuration ----------------------------------------------------------------------


def test_a_new_trial_is_registered_by_its_layout(db_path: Path, tmp_path: Path) -> None:
    assert query(db_path, "SELECT 1 FROM protocol WHERE protocol_code = 'HOVON-132'") == []
    report = load_aml(db_path, write_aml(tmp_path / "hovon.csv", AML_PATIENT))
    assert query(db_path, "SELECT * FROM protocol WHERE protocol_code = 'HOVON-132'") == [
        ("HOVON-132", "HOVON-SAKK", "adult", "AML", None,
         "HOVON 132 / SAKK 30/13: lenalidomide added to intensive induction in newly diagnosed AML"),
    ]  # fmt: skip
    assert report.tables["protocol"] == {"inserted": 1}
    assert scalar(db_path, "SELECT protocol_code FROM enrolment") == "HOVON-132"
    again = load_aml(db_path, write_aml(tmp_path / "hovon_2.csv", AML_PATIENT, AML_SECOND))
    assert again.tables["protocol"] == {"inserted": 0}


def test_a_seeded_protocol_stays_as_it_is(db_path: Path, tmp_path: Path) -> None:
    seeded = query(db_path, "SELECT * FROM protocol WHERE protocol_code = 'GRAALL-2005'")
    layout = layout_with(
        tmp_path, '[[protocols]]\ncode = "GRAALL-2005"\npopulation = "all"\ndisease = "ALL"\ntitle = "mine"'
    )
    report = load_source(db_path, "clinical", write_graall(tmp_path / "g.csv", ALIVE), layout=layout)
    assert query(db_path, "SELECT * FROM protocol WHERE protocol_code = 'GRAALL-2005'") == seeded
    assert any(
        "protocol GRAALL-2005 is in the warehouse as GRAALL / adult / ALL" in w for w in report.warnings
    )


# --- open code lists ---------------------------------------------------------------------------------


def test_an_open_diagnosis_list_keeps_a_code_as_written_and_flags_it(db_path: Path, tmp_path: Path) -> None:
    report = load_aml(
        db_path,
        write_aml(tmp_path / "hovon.csv", AML_PATIENT, AML_SECOND, {**AML_THIRD, "DIAGNOSIS": " RAEB "}),
    )
    assert report.rows_rejected == 0
    assert query(db_path, "SELECT diagnosis, count(*) FROM enrolment GROUP BY 1 ORDER BY 1") == [
        ("AML", 1),
        ("RAEB", 2),
    ]
    assert report.warnings == [
        "DIAGNOSIS (diagnosis): codes outside the open code list diagnosis are kept as written: "
        "'RAEB' (2 lines)"
    ]


def test_a_closed_diagnosis_list_maps_to_the_canonical_diagnoses(db_path: Path, tmp_path: Path) -> None:
    layout = layout_with(tmp_path, "", GRAALL_TOML.replace('"LAL-T" = "T-ALL"', '"LAL-T" = "T-ALL-ish"'))
    export = write_graall(tmp_path / "g.csv", ALIVE)
    with pytest.raises(CgdwError, match="code list diagnostic maps to T-ALL-ish, not a canonical diagnosis"):
        load_source(db_path, "clinical", export, layout=layout)


def test_an_mrd_result_of_a_group_not_listed_is_judged_by_its_patient(db_path: Path, tmp_path: Path) -> None:
    """The MRD layout's trial groups are an open list: a new group's result loads once its trial export
    has created the patient; for a patient no export has, it is quarantined as such (known_patient)."""
    load_aml(db_path, write_aml(tmp_path / "hovon.csv", AML_PATIENT))
    header = (
        "trial_group\tpatient_id\tsample_id\ttime_point\tdays_from_diagnosis\tmethod\ttarget\tvalue\tunit"
    )
    mrd = tmp_path / "mrd.tsv"
    mrd.write_text(
        f"{header}\tlimit_of_detection\tquantitative_range_low\tqualitative_result\n"
        "hovon-sakk\tH-001\t\tC2\t60\tMFC\tLAIP\t0.05\tpercent\t\t\t\n"
        "AMLSG\tA-1\t\tC2\t60\tMFC\tLAIP\t0.05\tpercent\t\t\t\n"
    )
    report = load_source(db_path, "mrd", mrd, max_reject_fraction=1.0)
    assert (report.rows_loaded, report.rows_rejected) == (1, 1)
    assert report.issues.select("column", "rule").rows() == [("patient_id", "known_patient")]
    assert report.warnings == [
        "trial_group (trial_group): codes outside the open code list trial_group are kept as written: "
        "'AMLSG' (1 line)"
    ]


# --- times since diagnosis ---------------------------------------------------------------------------


def test_times_in_months_are_days_kept_fractional(db_path: Path, tmp_path: Path) -> None:
    load_aml(db_path, write_aml(tmp_path / "hovon.csv", AML_PATIENT))
    events = query(db_path, "SELECT event_type, day FROM outcome_event ORDER BY event_type")
    # 10.5 and 14.2 months x 30.4375 days: never rounded to whole days.
    assert events == [("death", 432.2125), ("last_follow_up", 432.2125), ("relapse", 319.59375)]
    assert query(db_path, "SELECT cr_day, hsct_day FROM treatment_response") == [(31.0, None)]


def test_sex_age_and_year_of_diagnosis_may_be_missing(db_path: Path, tmp_path: Path) -> None:
    load_aml(db_path, write_aml(tmp_path / "hovon.csv", AML_SECOND))
    enrolment = "SELECT sex, age_at_diagnosis_years, diagnosis_year, diagnosis FROM enrolment"
    assert query(db_path, enrolment) == [(None, None, None, "RAEB")]


def test_a_date_needs_the_diagnosis_date_it_is_counted_from(tmp_path: Path, db_path: Path) -> None:
    toml = (LAYOUTS / "hovon_aml.toml").read_text()
    dated = toml.replace(
        'cr_day = { column = "DAYS_TO_CR", type = "days" }', 'cr_date = { column = "DATE_CR", type = "date" }'
    )
    path = layout_with(tmp_path, "", dated)
    export = write_aml(tmp_path / "hovon.csv", AML_PATIENT)
    with pytest.raises(CgdwError, match="cr_date need diagnosis_date: days are counted from it"):
        load_source(db_path, "clinical", export, layout=path)
    both = toml.replace(
        "[attributes.eln_risk]", 'cr_date = { column = "DATE_CR", type = "date" }\n[attributes.eln_risk]'
    )
    with pytest.raises(CgdwError, match="cr_date and cr_day are one time: map one of them"):
        load_source(db_path, "clinical", export, layout=layout_with(tmp_path, "", both))


def test_a_time_since_diagnosis_says_its_unit(tmp_path: Path, db_path: Path) -> None:
    toml = (LAYOUTS / "hovon_aml.toml").read_text()
    unitless = toml.replace('column = "DAYS_TO_CR", type = "days"', 'column = "DAYS_TO_CR", type = "decimal"')
    export = write_aml(tmp_path / "hovon.csv", AML_PATIENT)
    with pytest.raises(CgdwError, match="cr_day is a time since diagnosis: type days or months, not decimal"):
        load_source(db_path, "clinical", export, layout=layout_with(tmp_path, "", unitless))


def messages(report: LoadReport) -> dict[str, str]:
    """The report's problems by source column: the messages a data manager reads."""
    return dict(report.issues.select("column", "message").rows())


def test_a_time_since_diagnosis_below_zero_is_said_so_not_a_date_before_diagnosis(
    db_path: Path, tmp_path: Path
) -> None:
    """A layout that sends times (days or months) has no dates: a negative time is not 'a date before the
    diagnosis date'. A time in months is shown as the days it became, fraction kept."""
    in_days = {**AML_PATIENT, "DAYS_TO_CR": "-3"}
    in_months = {**AML_SECOND, "PATNO": "H-009", "MONTHS_FOLLOW_UP": "-0.5"}
    export = write_aml(tmp_path / "hovon.csv", in_days, in_months)
    report = load_source(db_path, "clinical", export, layout="hovon_aml", max_reject_fraction=1.0)
    assert report.rows_rejected == 2
    assert messages(report) == {
        "DAYS_TO_CR": "DAYS_TO_CR = '-3': the time since diagnosis is negative",
        "MONTHS_FOLLOW_UP": (
            "MONTHS_FOLLOW_UP = '-0.5' (read as last_contact_day = -15.21875): the time since diagnosis is "
            "negative"
        ),
    }


def test_a_day_read_from_a_date_is_shown_as_a_whole_number(db_path: Path, tmp_path: Path) -> None:
    """Days are floats (a time in months is fractional); a day counted from a date is whole and the
    message shows it so: 1756, not 1756.0. A date before diagnosis is said in terms of dates."""
    dead_while_alive = graall_line(ALIVE, DATE_DECES="01/01/2009")  # diagnosed 12/03/2004
    cr_before_diagnosis = graall_line(DEAD, DATE_RC="01/01/2004")  # diagnosed 01/02/2004
    export = write_graall(tmp_path / "g.csv", dead_while_alive, cr_before_diagnosis)
    report = load_source(db_path, "clinical", export, layout="graall", max_reject_fraction=1.0)
    assert messages(report) == {
        "DATE_DECES": (
            "DATE_DECES = '01/01/2009' (read as death_day = 1756): a death date is given exactly when the "
            "patient is dead"
        ),
        "DATE_DERNIERES_NOUVELLES": (
            "DATE_DERNIERES_NOUVELLES = '01/06/2010' (read as last_contact_day = 2272): the last contact "
            "cannot be after death"
        ),
        "DATE_RC": "DATE_RC = '01/01/2004' (read as cr_day = -31): the date is before the diagnosis date",
    }


# --- a contradiction withholds the fact it concerns, not the patient --------------------------------


def test_a_relapse_without_a_remission_withholds_the_relapse_only(db_path: Path, tmp_path: Path) -> None:
    relapsed = graall_line(REFRACTORY, DATE_RECHUTE="01/11/2008")
    report = load_source(db_path, "clinical", write_graall(tmp_path / "g.csv", relapsed), layout="graall")
    assert (report.rows_loaded, report.rows_rejected) == (1, 0)
    # The patient is enrolled and their overall survival is known ...
    assert scalar(db_path, "SELECT count(*) FROM enrolment") == 1
    assert query(db_path, "SELECT event_type, day FROM outcome_event ORDER BY 1") == [
        ("death", 52.0),
        ("last_follow_up", 52.0),
    ]
    # ... the relapse is not stored but quarantined, with its rule and the line as sent.
    assert rejected(db_path, report.run_id) == [(2, "DATE_RECHUTE", "01/11/2008", "relapse_after_cr")]
    message = scalar(db_path, "SELECT message FROM rejected_record")
    assert message == (
        "DATE_RECHUTE = '01/11/2008': a relapse needs a complete remission before it; the relapse is not "
        "loaded, the patient's other facts load"
    )
    assert report.fact_issues.select("column", "value", "rule").rows() == [
        ("DATE_RECHUTE", "01/11/2008", "relapse_after_cr")
    ]


@pytest.mark.parametrize(
    ("cells", "quarantined", "stored"),
    [
        # A CR date with no CR: the date is left out, the response (no CR) loads.
        (
            {"DATE_RC": "01/12/2008"},
            ("DATE_RC", "01/12/2008", "cr_date_iff_cr"),
            "SELECT cr_day FROM treatment_response",
        ),
        # A transplant in first CR of a patient never in CR: the transplant (flag and date) is left out.
        (
            {"ALLOGREFFE_RC1": "OUI", "DATE_ALLOGREFFE": "15/11/2008"},
            ("DATE_ALLOGREFFE", "15/11/2008", "hsct_in_first_cr"),
            "SELECT hsct_in_cr1, hsct_day FROM treatment_response",
        ),
    ],
)
def test_each_per_fact_rule_withholds_its_fact(
    db_path: Path, tmp_path: Path, cells: dict[str, str], quarantined: tuple[str, str, str], stored: str
) -> None:
    line = graall_line(REFRACTORY, **cells)
    report = load_source(db_path, "clinical", write_graall(tmp_path / "g.csv", line), layout="graall")
    assert report.rows_loaded == 1
    assert rejected(db_path, report.run_id) == [(2, *quarantined)]
    assert set(query(db_path, stored)[0]) == {None}


def test_a_remission_without_its_date_loads_with_the_day_unknown(db_path: Path, tmp_path: Path) -> None:
    """The layout has a CR date column but the cell is empty: the remission stands, its day is unknown,
    and the quarantine says so (a layout without a CR date column is not asked for one)."""
    line = graall_line(ALIVE, DATE_RC="")
    report = load_source(db_path, "clinical", write_graall(tmp_path / "g.csv", line), layout="graall")
    assert report.rows_loaded == 1
    assert query(db_path, "SELECT complete_remission, cr_day FROM treatment_response") == [(True, None)]
    assert rejected(db_path, report.run_id) == [(2, "DATE_RC", None, "cr_date_iff_cr")]


def test_a_second_relapse_before_the_first_is_withheld_alone(db_path: Path, tmp_path: Path) -> None:
    line = graall_line(DEAD, DATE_RECHUTE_2="01/12/2004")  # the first relapse is on 01/01/2005
    report = load_source(db_path, "clinical", write_graall(tmp_path / "g.csv", line), layout="graall")
    assert rejected(db_path, report.run_id) == [
        (2, "DATE_RECHUTE_2", "01/12/2004", "second_relapse_after_first")
    ]
    assert query(db_path, "SELECT event_seq FROM outcome_event WHERE event_type = 'relapse'") == [(1,)]


def test_a_contradiction_about_survival_still_rejects_the_patient(db_path: Path, tmp_path: Path) -> None:
    """Death and last contact are what OS is measured with: which date is wrong is not known, so nothing
    of the patient is loaded."""
    alive_with_death_date = graall_line(ALIVE, DATE_DECES="01/01/2009")
    export = write_graall(tmp_path / "g.csv", alive_with_death_date, DEAD)
    report = load_source(db_path, "clinical", export, layout="graall", max_reject_fraction=1.0)
    assert (report.rows_loaded, report.rows_rejected) == (1, 1)
    assert sorted(report.issues.get_column("rule")) == ["death_date_iff_dead", "no_contact_after_death"]
    assert report.fact_issues.is_empty()


def test_a_whole_number_too_large_for_the_view_is_withheld_not_stored(db_path: Path, tmp_path: Path) -> None:
    """An integer attribute of 1e20 broke every read of cohort_patient (BIGINT overflow): found by a hostile
    tester. Beyond 2^53 a double no longer holds every whole number: the value is withheld."""
    layout = (LAYOUTS / "hovon_aml.toml").read_text(encoding="utf-8")
    path = tmp_path / "hovon_int.toml"
    path.write_text(
        layout.replace('column = "BM_BLASTS"\ntype = "number"', 'column = "BM_BLASTS"\ntype = "integer"')
    )
    assert 'type = "integer"' in path.read_text()
    report = load_source(
        db_path,
        "clinical",
        write_aml(tmp_path / "hovon.csv", {**AML_PATIENT, "BM_BLASTS": "1e20"}),
        layout=str(path),
    )
    assert [(r["column"], r["rule"]) for r in report.fact_issues.iter_rows(named=True)] == [
        ("BM_BLASTS", "attribute:integer")
    ]
    apply_views(db_path)
    assert scalar(db_path, "SELECT count(*) FROM cohort_patient") == 1
