"""The raw-data contract documented in the repository is the one ingest enforces."""

from ml.data.contract_doc import DOC, contract_markdown


def test_docs_data_contract_is_generated_from_ml_contract():
    assert DOC.read_text() == contract_markdown(), "run `python -m ml.data.contract_doc` to refresh it"


def test_every_table_and_its_publication_date_are_documented():
    from ml.contract import PUBLISH_DATE, TABLES

    text = contract_markdown()
    for name in TABLES:
        assert f"## `{name}`" in text
    for name, column in PUBLISH_DATE.items():
        assert f"## `{name}`" in text and f"Public from: `{column}`" in text
