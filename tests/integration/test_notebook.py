"""The quickstart notebook runs top to bottom (so it never rots)."""

from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NB = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_executes(ml100k_dir, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("METAREC_DATA_DIR", str(ml100k_dir.parent))
    monkeypatch.setenv("METAREC_NO_PROGRESS", "1")
    nb = nbformat.read(NB, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NB.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "metarec" in text and "itemknn" in text
