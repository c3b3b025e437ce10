"""A planned block's recipients into `recipients`, in bulk, inside the creating transaction.

Chunks: an executemany on SQLite, one INSERT … SELECT FROM unnest(arrays) on PostgreSQL.

SQLite: one `executemany` of the six values that differ per row (the campaign id and the constants are
part of the statement), fed straight from the block's columns: a row's text is the shared `str` of its
distinct text (`campaigns.rendered`), so nothing is built per row but the phone and fields objects the
driver binds. PostgreSQL: one `COPY … FORMAT csv`, the CSV written by Arrow's C++ writer from the
block's columns (pandas' `to_csv` took 4.9 s of a million-row load; Arrow ~0.3 s). Arrow writes a null as
an empty unquoted field and an empty string as "", which is COPY's own rule.

What each costs: docs/benchmarks.md, "Storing a campaign".
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, text

from campaigns.states import ChunkState, RecipientState

COLUMNS = "campaign_id, chunk_id, row, phone, fields, text, parts, state, attempts, polls"


def _texts(column: pd.Series) -> np.ndarray:
    """The text per row as objects: None (the campaign's one text), or the shared str of its distinct text."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        distinct = column.cat.categories.to_numpy(dtype=object)
        return distinct[column.cat.codes.to_numpy()]
    return column.to_numpy(dtype=object)


def sqlite_insert(conn: Connection, campaign_id: int, df: pd.DataFrame, chunk_ids: np.ndarray) -> None:
    """`df`'s recipients (row, phone, fields, text, parts; `campaigns.plan.PlannedBlock`), pending, each in
    its chunk (`chunk_ids`, one per row), with one executemany on the connection's own transaction."""
    statement = (
        f"INSERT INTO recipients ({COLUMNS}) "
        f"VALUES ({int(campaign_id)}, ?, ?, ?, ?, ?, ?, '{RecipientState.PENDING}', 0, 0)"
    )
    rows = zip(
        chunk_ids.tolist(),
        df["row"].to_numpy(dtype=np.int64).tolist(),
        df["phone"].to_numpy(dtype=object),
        df["fields"].to_numpy(dtype=object),
        _texts(df["text"]),
        df["parts"].to_numpy(dtype=np.int64).tolist(),
        strict=True,
    )
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(statement, rows)
    finally:
        cursor.close()


def _arrow(values: pd.Series | np.ndarray, kind: pa.DataType) -> pa.Array:
    """A column as one Arrow array of `kind` (a Categorical decoded; pandas may hold several chunks)."""
    array = pa.array(values, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if isinstance(array, pa.DictionaryArray):
        array = array.dictionary_decode()
    return array.cast(kind) if array.type != kind else array


def postgres_copy(conn: Connection, campaign_id: int, df: pd.DataFrame, chunk_ids: np.ndarray) -> None:
    """`df`'s recipients, pending, each in its chunk (`chunk_ids`), with one COPY in CSV form on the
    connection's own transaction."""
    n = len(df)
    zeros = np.zeros(n, dtype=np.int64)
    table = pa.table(
        {
            "campaign_id": pa.array(np.full(n, campaign_id, dtype=np.int64)),
            "chunk_id": pa.array(chunk_ids.astype(np.int64)),
            "row": pa.array(df["row"].to_numpy(dtype=np.int64)),
            "phone": _arrow(df["phone"], pa.large_string()),
            "fields": _arrow(df["fields"], pa.large_string()),
            "text": _arrow(df["text"], pa.large_string()),
            "parts": pa.array(df["parts"].to_numpy(dtype=np.int64)),
            "state": pa.array(np.full(n, str(RecipientState.PENDING), dtype=object), pa.string()),
            "attempts": pa.array(zeros),
            "polls": pa.array(zeros),
        }
    )
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY recipients ({COLUMNS}) FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(memoryview(sink.getvalue()))


_PG_CHUNKS = text(
    "INSERT INTO chunks (campaign_id, seq, state, attempt, size, parts, cost_rial, updated_at) "
    "SELECT :campaign, s, :state, 0, z, p, k, :now FROM unnest(CAST(:seqs AS integer[]), "
    "CAST(:sizes AS integer[]), CAST(:parts AS integer[]), CAST(:costs AS bigint[])) AS t(s, z, p, k)"
)


def postgres_chunks(
    conn: Connection, campaign_id: int, chunks: pd.DataFrame, costs: np.ndarray, now: datetime
) -> None:
    """A block's chunks (seq, size, parts; `costs` their estimated rial), planned, in one statement: the
    executemany of 9,181 chunks took ~0.3 s of a million-row load."""
    conn.execute(
        _PG_CHUNKS,
        {
            "campaign": campaign_id,
            "state": str(ChunkState.PLANNED),
            "now": now,
            "seqs": chunks["seq"].to_numpy(dtype=np.int64).tolist(),
            "sizes": chunks["size"].to_numpy(dtype=np.int64).tolist(),
            "parts": chunks["parts"].to_numpy(dtype=np.int64).tolist(),
            "costs": np.asarray(costs, dtype=np.int64).tolist(),
        },
    )
