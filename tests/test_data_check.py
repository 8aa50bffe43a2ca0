"""check_dataset / format_check_report and the `reid data check` command."""

from __future__ import annotations

from click.testing import CliRunner

from reid.cli.data_check import check
from reid.data.check import PUBLISHED, Published, check_dataset, format_check_report
from reid.data.datasets import build_dataset

from .mini_datasets import make_market, make_msmt, write_image


def test_published_table_matches_method_md_and_cuhk03np_release():
    assert PUBLISHED["market1501"].train == (751, 12936) and PUBLISHED["market1501"].gallery == (751, 15913)
    assert PUBLISHED["dukemtmc"].query == (702, 2228) and PUBLISHED["dukemtmc"].cameras == 8
    assert PUBLISHED["msmt17"].gallery == (3060, 82161) and PUBLISHED["msmt17"].cameras == 15
    assert PUBLISHED["cuhk03-np-detected"].gallery == (700, 5332)
    assert PUBLISHED["cuhk03-np-labeled"].train == (767, 7368)


def test_exact_counts_report_no_difference(tmp_path):
    expected = make_market(tmp_path)
    ds = build_dataset("market1501", tmp_path)
    s = expected.splits
    report = check_dataset(ds, Published(s["train"], s["query"], s["gallery"], expected.cameras, "mini"))
    assert report.ok and report.differences == []
    assert report.splits["gallery"].ids == 4 and report.splits["gallery"].images == 7
    assert "matches the published counts (mini)" in format_check_report(report)


def test_every_difference_is_named(tmp_path):
    make_market(tmp_path)
    ds = build_dataset("market1501", tmp_path)
    report = check_dataset(ds, Published((3, 8), (3, 3), (5, 7), 7, "hand"))
    assert report.differences == [
        "train images: 7 found, published 8 (1 fewer)",
        "gallery identities: 4 found, published 5 (1 fewer)",
        "cameras: 6 found, published 7 (1 fewer)",
    ]
    text = format_check_report(report)
    assert "3 difference(s) from the published counts (hand):" in text
    assert "  - cameras: 6 found, published 7 (1 fewer)" in text


def test_default_comparison_uses_the_published_table(tmp_path):
    make_market(tmp_path)
    report = check_dataset(build_dataset("market1501", tmp_path))
    assert report.published is PUBLISHED["market1501"]
    assert "train identities: 3 found, published 751 (748 fewer)" in report.differences
    assert len(report.differences) == 6  # cameras (6) agree


def test_msmt17_train_compared_only_with_val(tmp_path):
    make_msmt(tmp_path)
    without = check_dataset(build_dataset("msmt17", tmp_path))
    assert not any(d.startswith("train") for d in without.differences)
    assert any("train not compared (use --with-val)" in n for n in without.notes)
    with_val = check_dataset(build_dataset("msmt17", tmp_path, with_val=True))
    assert "train images: 7 found, published 32,621 (32,614 fewer)" in with_val.differences


def test_synthetic_has_nothing_to_compare(tmp_path):
    make_market(tmp_path, "synthetic-market")
    report = check_dataset(build_dataset("synthetic", tmp_path))
    assert report.differences == [] and report.published is None
    assert "no published counts for synthetic" in format_check_report(report)


def test_cli_prints_table_counts_and_warnings(tmp_path):
    market = make_market(tmp_path).folder
    write_image(market / "query" / "IMG_1.jpg", seed=3)
    result = CliRunner().invoke(check, ["market1501", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"dataset market1501 at {market}"
    assert "train          3         7        5             751    12,936" in lines
    assert "counted: junk 2, unmatched 1" in lines
    assert any(line.startswith("  - ") and line.endswith("IMG_1.jpg") for line in lines)


def test_cli_user_mistakes_are_one_line(tmp_path):
    make_market(tmp_path)
    write_image(tmp_path / "Market-1501-v15.09.15" / "query" / "IMG_1.jpg", seed=3)
    runner = CliRunner()
    for args, text in [
        (["nosuch", "--data-root", str(tmp_path)], "Error: unknown dataset 'nosuch'"),
        (["dukemtmc", "--data-root", str(tmp_path)], "Error: DukeMTMC-reID not found under"),
        (["market1501", "--data-root", str(tmp_path), "--strict"], "Error: "),
        (["market1501", "--data-root", str(tmp_path), "--with-val"], "Error: with_val applies to msmt17 only"),
    ]:
        result = runner.invoke(check, args)
        assert result.exit_code == 1
        assert result.output.startswith(text) and result.output.count("\n") == 1, result.output
        assert "Traceback" not in result.output


def test_cli_verify_and_skip_bad(tmp_path):
    market = make_market(tmp_path).folder
    (market / "bounding_box_test" / "0003_c2s1_000999_00.jpg").write_bytes(b"\xff\xd8broken")
    runner = CliRunner()
    assert runner.invoke(check, ["market1501", "--data-root", str(tmp_path)]).exit_code == 0
    failed = runner.invoke(check, ["market1501", "--data-root", str(tmp_path), "--verify-images"])
    assert failed.exit_code == 1 and "0003_c2s1_000999_00.jpg: truncated JPEG" in failed.output
    skipped = runner.invoke(check, ["market1501", "--data-root", str(tmp_path), "--verify-images", "--skip-bad"])
    assert skipped.exit_code == 0 and "bad_images 1" in skipped.output


def test_cli_reads_data_root_from_environment(tmp_path, monkeypatch):
    make_market(tmp_path, "synthetic-market")
    monkeypatch.setenv("REID_DATA_ROOT", str(tmp_path))
    result = CliRunner().invoke(check, ["synthetic"])
    assert result.exit_code == 0 and "dataset synthetic at" in result.output
