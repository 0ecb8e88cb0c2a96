"""`hf-rnn bench --quick` produces a well-formed report; timings are not asserted (they depend on the machine)."""

import json

import pytest

from hf_rnn.benchmark import CELLS, VARIANTS, format_table
from hf_rnn.cli import main

_KERAS_ROWS = {"keras_fixed", "keras_bucketed"}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("bench")
    # through the CLI, as a user runs it; Keras rows need TensorFlow, which CI does not install, so they are
    # skipped with a note either way
    assert main(["bench", "--quick", "--no-keras", "--output-dir", str(output_dir)]) == 0
    return json.loads((output_dir / "benchmark.json").read_text()), output_dir


def test_markdown_file_is_the_table_of_the_json_report(quick_report):
    report, output_dir = quick_report
    assert (output_dir / "benchmark.md").read_text() == format_table(report)


def test_report_has_every_cell_and_row(quick_report):
    report, _ = quick_report
    assert set(report) == {
        "machine",
        "workload",
        "settings",
        "notes",
        "results",
        "frontend",
        "length_sweep",
        "tokenization",
    }
    assert report["machine"]["processor"] and isinstance(report["machine"]["cpu_flags"], list)
    assert report["settings"]["quick"] is True
    assert any("Keras rows skipped" in note for note in report["notes"])
    assert list(report["results"]) == list(CELLS)
    expected = [name for name in VARIANTS if name not in _KERAS_ROWS]
    bf16_skipped = any(note.startswith("bf16 rows skipped") for note in report["notes"])
    if bf16_skipped:
        expected.remove("hf_rnn_bf16")
    for cell, result in report["results"].items():
        assert [row["name"] for row in result["rows"]] == expected
        assert result["ideal_bucketing_gain"] >= 1.0
        for row in result["rows"]:
            for mode in ("train", "infer"):
                assert isinstance(row[f"{mode}_tokens_per_s"], float) and row[f"{mode}_tokens_per_s"] > 0
                assert row[f"{mode}_ratio"] > 0
                assert 0 < row[f"{mode}_real_tokens"] <= row[f"{mode}_padded_tokens"]
                assert len(row[f"{mode}_seconds"]) == report["settings"]["repeats"]
            assert isinstance(row["train_peak_memory_mib"], float)
        baseline = result["rows"][0]
        assert baseline["name"] == "baseline" and baseline["train_ratio"] == pytest.approx(1.0)
        for target in result["targets"]:
            assert set(target) == {"target", "value", "goal", "met"}
            assert target["value"] > 0 and isinstance(target["met"], bool)


def test_frontend_section_times_first_and_cached_epochs(quick_report):
    report, output_dir = quick_report
    frontend = report["frontend"]
    assert "random BERT" in frontend["encoder"]  # the quick run never loads MiniLM
    assert 0 < frontend["encode_seconds"] < frontend["first_epoch_seconds"]
    assert frontend["later_epoch_seconds"] > 0
    assert frontend["later_vs_first"] == pytest.approx(
        frontend["first_epoch_seconds"] / frontend["later_epoch_seconds"]
    )
    assert "## Frozen transformer frontend" in (output_dir / "benchmark.md").read_text()


def test_trainer_rows_report_their_start_up_apart(quick_report):
    report, _ = quick_report
    for result in report["results"].values():
        for row in result["rows"]:
            if row["name"].startswith("hf_rnn_") and row["name"] != "hf_rnn_loop":
                assert row["startup_seconds"] > 0
            else:
                assert row["startup_seconds"] is None


def test_length_sweep_rows(quick_report):
    report, _ = quick_report
    sweep = report["length_sweep"]
    assert sweep["cell"] == CELLS[0]
    lengths = [row["length"] for row in sweep["rows"]]
    assert lengths == sorted(lengths) and len(lengths) >= 3
    assert all(row["tokens_per_s"] > 0 and row["ms_per_step"] > 0 for row in sweep["rows"])


def test_markdown_table_has_header_and_rows(quick_report):
    report, _ = quick_report
    markdown = format_table(report)
    assert markdown.startswith("# hf-rnn bench")
    for cell, result in report["results"].items():
        assert f"## {cell}" in markdown
        for row in result["rows"]:
            assert f"| {row['name']} |" in markdown
    assert markdown.count("| variant | train tokens/s |") == len(report["results"])
    assert "| length | tokens/s |" in markdown


def test_unknown_cell_is_rejected(tmp_path, capsys):
    assert main(["bench", "--quick", "--cells", "lstm,transformer", "--output-dir", str(tmp_path)]) == 2
    assert "Unknown cells" in capsys.readouterr().err


def test_tokenization_section_paths_agree(quick_report):
    report, output_dir = quick_report
    tokenization = report["tokenization"]
    assert tokenization["same_ids"] is True
    paths = [row["path"] for row in tokenization["rows"]]
    assert paths[1].startswith("tokenizers encode_batch_fast") and paths[2].startswith("hf_rnn TextEncoder")
    assert all(row["reviews_per_s"] > 0 for row in tokenization["rows"])
    assert "## Tokenization" in (output_dir / "benchmark.md").read_text()


def test_denormal_rows_and_target(quick_report):
    report, _ = quick_report
    for result in report["results"].values():
        names = [row["name"] for row in result["rows"]]
        assert "hf_rnn_fp32_denormals" in names
        assert any(t["target"].startswith("train: denormals flushed") for t in result["targets"])


def test_busy_machine_section(tmp_path):
    """Only the busy-machine section, quick: every condition ran and was compared with the idle fixed row."""
    assert main(["bench", "--quick", "--sections", "busy", "--output-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "benchmark.json").read_text())
    rows = report["busy_machine"]["rows"]
    assert [(row["busy_processes"], row["threads"].split()[0]) for row in rows] == [
        (busy, threads) for busy in (0, 1, 2) for threads in ("fixed", "adaptive")
    ]
    assert rows[0]["slowdown_vs_idle_fixed"] == pytest.approx(1.0)
    assert all(row["steps"] > 0 and row["seconds_per_step"] > 0 for row in rows)
    assert "## Training on a busy machine" in (tmp_path / "benchmark.md").read_text()
    assert "results" not in report


def test_unknown_section_is_rejected(tmp_path, capsys):
    assert main(["bench", "--quick", "--sections", "cells,gpu", "--output-dir", str(tmp_path)]) == 2
    assert "Unknown sections" in capsys.readouterr().err
