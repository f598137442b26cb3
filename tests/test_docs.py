"""The documentation that is generated from the code stays in step with it."""

from pathlib import Path

from kiosk.config import SHIPPED_CONFIG, Config

ROOT = Path(__file__).resolve().parent.parent


def load_generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("config_reference", ROOT / "docs" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_reference_is_up_to_date():
    generator = load_generator()
    expected = generator.reference(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    assert (ROOT / "docs" / "config.md").read_text(encoding="utf-8") == expected, (
        "docs/config.md is stale: run .venv/bin/python docs/config_reference.py")


def test_config_reference_covers_every_setting():
    text = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    for section_name, section in Config.model_fields.items():
        assert f"## [{section_name}]" in text
        for key in section.annotation.model_fields:
            assert f"| `{key}` |" in text, f"{section_name}.{key}"


def test_readme_links_every_doc():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in (ROOT / "docs").glob("*.md"):
        assert f"docs/{doc.name}" in readme, doc.name


def test_readme_lists_every_reason_with_what_the_screen_says():
    from kiosk.display.texts import LINES
    from kiosk.results import Reason

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Reasons", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines() if line.startswith("| `")}
    assert set(rows) == {str(reason) for reason in Reason}
    for reason, row in rows.items():
        assert LINES[reason]["en"][0] in row and LINES[reason]["zh"][0] in row, reason
