import json

import pytest
import reproduce

from tests.examples.test_examples import needs_mnist


def test_cells_come_in_the_issue_order():
    cells = reproduce.cells()
    assert cells[:6] == [
        ("relu", 1, 0),
        ("aprelu", 1, 0),
        ("relu", 1, 1),
        ("aprelu", 1, 1),
        ("relu", None, 0),
        ("aprelu", None, 0),
    ]
    assert len(set(cells)) == len(cells)


@needs_mnist
def test_runner_appends_one_record_per_cell_and_resumes(tmp_path, capsys):
    results = tmp_path / "records.json"
    args = ["--results", str(results), "--max-steps", "2", "--train-images", "300"]
    reproduce.main([*args, "--cells", "1"])
    (first,) = json.loads(results.read_text())
    assert tuple(first) == reproduce.KEYS
    assert (first["activation"], first["snr_db"], first["seed"]) == ("relu", 1, 0)
    assert first["steps"] == 2 and first["epochs"] == 1
    assert 0 <= first["train_accuracy"] <= 1 and 0 <= first["test_accuracy"] <= 1
    assert first["seconds"] > 0 and first["backend"] == "tensorflow"
    # A second run continues with the next cell instead of redoing the first.
    reproduce.main([*args, "--cells", "1"])
    records = json.loads(results.read_text())
    assert records[0] == first
    assert [(r["activation"], r["seed"]) for r in records] == [
        ("relu", 0),
        ("aprelu", 0),
    ]
    assert "1 cell(s) to run, 2 steps each" in capsys.readouterr().out


def test_runner_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        reproduce.parse_args(["--cells", "0"])
    bad = tmp_path / "records.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="must hold a JSON list"):
        reproduce.load(bad)
