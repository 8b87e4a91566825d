"""The README as a newcomer meets it, and the docs/ pages it links to."""

from __future__ import annotations

import re
from pathlib import Path

from firebreak_local.template import load_template

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)")
FIRST_SCREEN = 40


def local_links(page: Path) -> list[Path]:
    text = page.read_text(encoding="utf-8")
    return [(page.parent / target).resolve() for target in LINK.findall(text) if "://" not in target]


def test_the_first_screen_says_what_to_type_and_what_it_shows() -> None:
    # GIVEN the first screen of the README
    first = "\n".join(README.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN])

    # THEN it says what Firebreak does, shows a picture, the two commands and a sample of what demo prints
    assert first.startswith("# Firebreak\n\nFirebreak ")
    assert "```mermaid" in first
    assert "make demo" in first and "make test" in first
    assert "CONTAINED" in first


def test_the_readme_follows_house_style_order() -> None:
    # GIVEN the README's sections
    text = README.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)

    # THEN the commands come first, then the deploy steps, the folder table, adding a playbook and cleanup
    assert headings == ["Try it", "Deploy", "Documentation", "Layout", "Adding a playbook", "Cleanup"]
    deploy = text[text.index("## Deploy") : text.index("## Documentation")]
    assert "sam build && sam deploy --guided" in deploy
    assert "docs/organizations.md" in deploy


def test_every_local_link_resolves_and_every_docs_page_is_linked_from_the_readme() -> None:
    # GIVEN the README and every docs page
    pages = [README, *sorted(DOCS.glob("*.md"))]

    # THEN every relative link names a file that exists
    broken = [f"{page.name} -> {target}" for page in pages for target in local_links(page) if not target.exists()]
    assert broken == []
    # AND every docs page is reachable from the README and listed in its Layout table's docs/ row
    linked = set(local_links(README))
    assert [page.name for page in DOCS.glob("*.md") if page.resolve() not in linked] == []
    assert "| `docs/` |" in README.read_text(encoding="utf-8")


def test_the_parameters_page_names_every_parameter_of_the_template() -> None:
    # GIVEN the template's parameters and the reference page
    parameters = load_template(ROOT / "template.yaml").raw["Parameters"]
    page = (DOCS / "parameters.md").read_text(encoding="utf-8")

    # THEN each parameter has its row there
    assert [name for name in parameters if f"| `{name}` |" not in page] == []
