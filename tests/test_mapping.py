"""Mappings: flags, TOML files and presets, checked against a header before any row is read."""

from __future__ import annotations

import textwrap

import pytest

from converter.errors import MappingError
from converter.mapping import (
    FieldSpec,
    FieldType,
    MappingOverrides,
    MappingSpec,
    TagSpec,
    TimeSpec,
    load_preset,
    parse_field_flag,
    parse_mapping_toml,
    parse_tag_flag,
    parse_type_flag,
    resolve,
    snake_case,
)

HEADER = ["time", "station", "temp c", "rain,mm", "ok"]


def _resolve(spec, header=HEADER):
    return resolve(spec, header, source="w.csv", default_measurement="w")


@pytest.mark.parametrize(
    ("name", "snake"),
    [
        ("ground-speed", "ground_speed"),
        ("gps:hdop", "gps_hdop"),
        ("ECMWF ERA5 SL Wind (10 m above Ground U Component)", "ecmwf_era5_sl_wind_10_m_above_ground_u_component"),
        ("OSU Ocean NPP 0.083deg 8d NPP", "osu_ocean_npp_0_083deg_8d_npp"),
        ("--x--", "x"),
    ],
)
def test_snake_case(name, snake):
    assert snake_case(name) == snake


@pytest.mark.parametrize(
    ("flag", "spec"),
    [
        ("event-id", FieldSpec("event-id")),
        ("event_id=event-id", FieldSpec("event-id", key="event_id")),
        ("event_id=event-id:integer", FieldSpec("event-id", key="event_id", type=FieldType.INTEGER)),
        ("gps:hdop", FieldSpec("gps:hdop")),  # ':hdop' is not a type: part of the column name
        ("gps:hdop:float", FieldSpec("gps:hdop", type=FieldType.FLOAT)),
    ],
)
def test_field_flag(flag, spec):
    assert parse_field_flag(flag) == spec


def test_tag_and_type_flags():
    assert parse_tag_flag("station") == TagSpec("station")
    assert parse_tag_flag("site=station") == TagSpec("station", key="site")
    assert parse_type_flag("a=b=string") == ("a=b", FieldType.STRING)
    with pytest.raises(MappingError, match="expected COLUMN=TYPE"):
        parse_type_flag("a=text")


def test_defaults_guess_the_time_column_and_make_the_rest_fields():
    plan = _resolve(MappingSpec())
    assert plan.measurement == "w" and plan.time.column == "time"
    assert [(f.key, f.escaped_key) for f in plan.fields] == [
        ("station", "station"), ("temp c", "temp\\ c"), ("rain,mm", "rain\\,mm"), ("ok", "ok")]


def test_tags_are_sorted_by_key_bytes():
    spec = MappingSpec(tags=(TagSpec("station", key="b"), TagSpec("ok", key="B"), TagSpec("rain,mm", key="a")))
    assert [t.key for t in _resolve(spec).tags] == ["B", "a", "b"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (MappingSpec(tags=(TagSpec("stations"),)),
         "w.csv: column 'stations' (tag) is not in the header. Did you mean 'station'? Columns: 'time', 'station', 'temp c', 'rain,mm', 'ok'."),
        (MappingSpec(tags=(TagSpec("station"),), fields=(FieldSpec("station"),)),
         "w.csv: column 'station' is mapped twice (tag and field)."),
        (MappingSpec(fields=(FieldSpec("ok", key="x"), FieldSpec("station", key="x"))),
         "key 'x' is produced twice"),
        (MappingSpec(fields=(FieldSpec("ok", key="time"),)), "would get the key 'time', which InfluxDB refuses"),
        (MappingSpec(time=TimeSpec(column="when")), "column 'when' (time) is not in the header"),
        (MappingSpec(time=TimeSpec(format="dd.mm.yyyy")), "time format 'dd.mm.yyyy' is not known"),
        (MappingSpec(other_columns="ignore"), "the mapping gives no field"),  # type: ignore[arg-type]
        (MappingSpec(measurement="#x"), "starts with '#'"),
    ],
)
def test_mapping_errors_name_the_problem_and_the_fix(spec, message):
    from converter.mapping import OtherColumns

    if spec.other_columns == "ignore":
        spec = MappingSpec(other_columns=OtherColumns.IGNORE)
    with pytest.raises(MappingError) as caught:
        _resolve(spec)
    assert message in str(caught.value)


def test_duplicate_header_names_are_an_error():
    with pytest.raises(MappingError, match="names column 'a' twice \\(columns 1 and 3\\)"):
        _resolve(MappingSpec(), ["a", "b", "a"])


def test_toml_file():
    spec = parse_mapping_toml(textwrap.dedent("""
        measurement = "weather"
        exclude = ["ok"]
        [time]
        column = "time"
        format = "epoch_s"
        [tags]
        site = "station"
        [fields]
        rain = { column = "rain,mm", type = "float" }
        [types]
        "temp c" = "integer"
    """), source="m.toml")
    plan = _resolve(spec)
    assert plan.measurement == "weather" and plan.time.format == "epoch_s"
    assert [t.key for t in plan.tags] == ["site"]
    assert [(f.key, f.type) for f in plan.fields] == [("rain", FieldType.FLOAT), ("temp c", FieldType.INTEGER)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("measurment = 'x'", "unknown key(s) measurment"),
        ("[fields]\nx = { column = 'a', type = 'double' }", "fields.x.type = 'double' is not one of float, integer"),
        ("measurement = ", "not valid TOML"),
    ],
)
def test_toml_errors(text, message):
    with pytest.raises(MappingError) as caught:
        parse_mapping_toml(text, source="m.toml")
    assert message in str(caught.value)


def test_flags_override_the_preset_role_of_a_column():
    spec = load_preset("movebank").overridden_by(MappingOverrides(fields=(FieldSpec("event-id"),), tags=(TagSpec("sensor-type", key="s"),)))
    assert "event-id" not in {t.column for t in spec.tags}
    assert [t.key for t in spec.tags if t.column == "sensor-type"] == ["s"]


def test_movebank_preset_skips_columns_an_export_lacks():
    plan = _resolve(load_preset("movebank"), ["event-id", "timestamp", "location-lat", "location-long", "custom col"])
    assert plan.measurement == "movebank" and plan.tags == ()
    assert [(f.key, f.type.value) for f in plan.fields] == [
        ("lat", "float"), ("lon", "float"), ("event_id", "integer"), ("custom_col", "auto")]


def test_missing_preset():
    with pytest.raises(MappingError, match="no preset named 'movbank'; available presets: movebank"):
        load_preset("movbank")
