"""Layouts are configuration: a new protocol is a TOML file plus a test like the one below."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.errors import CgdwError
from etl.load.layout import available_layouts, load_layout
from etl.load.layout_docs import render
from etl.sources.registry import load_source
from tests.helpers import REPO, query

# An AML trial group's export, described without touching any code: comma-separated UTF-8, ISO dates,
# WBC in x10^9/L, no mediastinal mass or HSCT columns (optional fields may be left out).
HOVON_LAYOUT = """
[layout]
name = "hovon"
kind = "clinical"
trial_group = "HOVON-SAKK"
description = "HOVON-SAKK AML trial export"
file_format = "csv"
delimiter = ","
encoding = "utf-8"
date_format = "%Y-%m-%d"

[fields]
source_patient_id = { column = "subject", type = "string", required = true }
protocol_code = { column = "study", type = "code", codes = "study", required = true }
sex = { column = "gender", type = "code", codes = "gender", required = true }
age_years = { column = "age", type = "decimal", required = true }
diagnosis_date = { column = "dx_date", type = "date", required = true }
diagnosis = { column = "dx", type = "code", codes = "dx", required = true }
wbc_g_per_l = { column = "wbc", type = "decimal" }
complete_remission = { column = "cr", type = "flag", codes = "yn", required = true }
cr_date = { column = "cr_date", type = "date" }
relapse_date = { column = "relapse_date", type = "date" }
vital_status = { column = "status", type = "code", codes = "status", required = true }
death_date = { column = "death_date", type = "date" }
last_contact_date = { column = "last_fu", type = "date", required = true }
consent_status = { column = "consent", type = "code", codes = "consent", required = true }

[codes.study]
map = { "HO102" = "HOVON-102" }
[codes.gender]
map = { "1" = "M", "2" = "F" }
[codes.dx]
map = { "AML" = "AML" }
[codes.yn]
map = { "Y" = true, "N" = false }
[codes.status]
map = { "A" = "alive", "D" = "dead" }
[codes.consent]
map = { "Y" = "given", "W" = "withdrawn" }
"""


def test_the_packaged_layouts_load_and_their_docs_are_current() -> None:
    packaged = ["cnv", "fralle", "graall", "hovon102", "hovon_aml", "lab", "mrd", "samples"]
    assert available_layouts() == packaged
    for name in available_layouts():
        assert (REPO / "docs" / "formats" / f"{name}.md").read_text() == render(load_layout(name)), (
            "run: python -m etl.load.layout_docs docs/formats"
        )


def test_a_new_protocol_is_a_layout_file(db_path: Path, tmp_path: Path) -> None:
    layout = tmp_path / "hovon.toml"
    layout.write_text(HOVON_LAYOUT)
    export = tmp_path / "hovon_export.csv"
    export.write_text(
        "subject,study,gender,age,dx_date,dx,wbc,cr,cr_date,relapse_date,status,death_date,last_fu,consent\n"
        "H-001,HO102,2,67.5,2012-05-01,AML,12.5,Y,2012-06-10,2013-01-15,D,2013-06-01,2013-06-01,Y\n"
        "H-002,HO102,1,61.0,2012-07-03,AML,3.1,Y,2012-08-20,,A,,2016-01-01,Y\n"
    )
    report = load_source(db_path, "clinical", export, layout=layout)
    assert report.rows_loaded == 2
    rows = query(
        db_path,
        "SELECT p.trial_group, e.protocol_code, e.diagnosis, b.mediastinal_mass, t.hsct_in_cr1 "
        "FROM patient p JOIN enrolment e USING (patient_id) JOIN baseline b USING (patient_id) "
        "JOIN treatment_response t USING (patient_id)",
    )
    assert rows == [("HOVON-SAKK", "HOVON-102", "AML", None, None)] * 2


def test_a_layout_missing_a_required_field_is_refused(tmp_path: Path, db_path: Path) -> None:
    layout = tmp_path / "broken.toml"
    layout.write_text(
        HOVON_LAYOUT.replace('vital_status = { column = "status"', 'vital = { column = "status"')
    )
    export = tmp_path / "x.csv"
    export.write_text("subject\nH-1\n")
    with pytest.raises(CgdwError, match="unknown fields vital; required fields not mapped: vital_status"):
        load_source(db_path, "clinical", export, layout=layout)


def test_a_layout_may_not_map_an_identifier_column(tmp_path: Path) -> None:
    layout = tmp_path / "leaky.toml"
    layout.write_text(HOVON_LAYOUT.replace('column = "subject"', 'column = "patient_name"'))
    with pytest.raises(CgdwError, match="patient_name are direct identifiers"):
        load_layout(layout)


def test_an_unknown_layout_name_lists_the_known_ones() -> None:
    with pytest.raises(
        CgdwError, match="known layouts are cnv, fralle, graall, hovon102, hovon_aml, lab, mrd, samples"
    ):
        load_layout("gralal")
