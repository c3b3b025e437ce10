"""The pure preflight: tally, prices, checks and the JSON contract (README, "Preflight"). No I/O here; the use case
over the loader, the store and the sandbox is tests/test_preflight_e2e.py."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from campaigns.operators import Operator
from campaigns.preflight import (
    CampaignType,
    Check,
    EarlierCampaign,
    Loaded,
    PreflightOptions,
    PreflightSettingError,
    RecentSends,
    Severity,
    Tally,
    continue_command,
    has_opt_out_token,
    parse_duration,
    summarise,
)
from campaigns.prices import PriceError, PriceTable, parse_price_setting, price_table_from_toml
from campaigns.text import Alphabet, Template

MCI, IRANCELL = "+989121234567", "+989351234567"  # 0912: MCI, 0935: Irancell (phonenumbers carrier data)
OK_TEXT = "سلام {name}، تخفیف ویژه. لغو۱۱"
LOADED = Loaded({"invalid": 2, "duplicate": 1, "opted out": 1}, 1)
PROMO_OK = PreflightOptions(window="09:00-21:00")


def phones(n: int, start: int = 9120000000) -> list[str]:
    return [f"+98{start + i}" for i in range(n)]


def block(numbers: list[str], first_row: int = 2, **columns: list[object]) -> pd.DataFrame:
    df = pd.DataFrame({"row": range(first_row, first_row + len(numbers)), "phone": numbers})
    for name, values in columns.items():
        df[name] = pd.Series(values, dtype=object)
    return df


def tally_of(template: str, *blocks: pd.DataFrame, **kw: object) -> Tally:
    tally = Tally(Template(template), **kw)  # type: ignore[arg-type]
    for b in blocks:
        tally.add(b)
    return tally


def summary(tally: Tally, options: PreflightOptions = PROMO_OK, **kw: object):  # noqa: ANN201
    return summarise(
        tally, provider="amoot", account="amoot:x", sender="public", loaded=LOADED, options=options, **kw
    )  # type: ignore[arg-type]


def codes(s) -> dict[Check, Severity]:  # noqa: ANN001
    return {f.code: f.severity for f in s.findings}


# --- the tally -----------------------------------------------------------------------------------


def test_counts_operators_parts_alphabets_and_previews_across_blocks() -> None:
    names = ["علی", "x" * 200, "", "سارا"]
    b1 = block([MCI, IRANCELL], name=names[:2])
    b2 = block(["+989201234567", "+989221234567"], first_row=4, name=names[2:])
    s = summary(tally_of(OK_TEXT, b1, b2))
    assert s.recipients == 4
    assert s.operators[Operator.MCI] == 1 and s.operators[Operator.IRANCELL] == 1
    assert sum(s.operators.values()) == 4
    assert s.parts_histogram == {1: 3, 4: 1}  # 200 x plus the Persian text: UCS-2, 225 units, 4 parts
    assert s.total_parts == 7
    assert s.alphabet == "ucs2" and s.alphabets == {Alphabet.UCS2: 4}
    assert [(p.why, p.row, p.parts) for p in s.previews] == [
        ("first row", 2, 1),
        ("longest text", 3, 4),
        ("empty placeholder", 4, 1),
    ]
    assert s.rejected == {"invalid": 2, "duplicate": 1, "opted out": 1} and s.suppressed == 1


def test_static_text_counts_without_rendering_and_has_no_empty_preview() -> None:
    s = summary(tally_of("Hello [x] لغو11", block(phones(3))))
    assert s.parts_histogram == {1: 3} and s.total_parts == 3
    assert [p.why for p in s.previews] == ["first row"]  # the first row is the longest too


def test_fingerprint_ignores_order_and_other_columns_but_not_text_or_numbers() -> None:
    nums = phones(5)
    a = tally_of("hi {name}", block(nums, name=list("abcde"), city=list("vwxyz"))).fingerprint()
    b = tally_of("hi {name}", block(nums[::-1], name=list("edcba"), city=list("12345"))).fingerprint()
    split = tally_of("hi {name}", block(nums[:2], name=list("ab")), block(nums[2:], 4, name=list("cde")))
    assert a == b == split.fingerprint()
    # the same recipients and the same template: a name edited in the file is the same campaign
    assert a == tally_of("hi {name}", block(nums, name=list("abcdX"))).fingerprint()
    assert a != tally_of("hi {name}!", block(nums, name=list("abcde"))).fingerprint()
    assert a != tally_of("hi {name}", block(nums[:4], name=list("abcd"))).fingerprint()


def test_fingerprint_counts_the_numbers_the_suppression_list_took_out() -> None:
    nums = phones(5)
    whole = tally_of("hi", block(nums)).fingerprint()
    opted = Tally(Template("hi"))
    opted.add(block(nums[:4]))
    assert opted.fingerprint() != whole  # without the loader's word, one number is missing
    opted.add_suppressed(np.array([int(nums[4][1:]), int(nums[4][1:])], dtype=np.int64))  # twice in the file
    assert opted.fingerprint() == whole  # as loaded from the file, before the suppression list


# --- prices and cost -----------------------------------------------------------------------------


def test_price_setting_spellings_and_the_most_specific_price() -> None:
    table = parse_price_setting("gsm7=800, ucs2=1_000, MCI.ucs2=950, Rightel=700", "SMSDISPATCH_AMOOT_PRICE")
    assert table.per_part(Operator.MCI, Alphabet.UCS2) == 950
    assert table.per_part(Operator.MCI, Alphabet.GSM7) == 800
    assert table.per_part(Operator.RIGHTEL, Alphabet.UCS2) == 700
    assert table.per_part(Operator.IRANCELL, Alphabet.UCS2) == 1000
    assert parse_price_setting("1200", "X").per_part(Operator.OTHER, Alphabet.GSM7) == 1200
    assert not parse_price_setting("", "X")
    with pytest.raises(PriceError, match="SMSDISPATCH_AMOOT_PRICE: 'arabic' is not gsm7"):
        parse_price_setting("arabic=5", "SMSDISPATCH_AMOOT_PRICE")
    with pytest.raises(PriceError, match="not a price in rial"):
        parse_price_setting("ucs2=cheap", "SMSDISPATCH_AMOOT_PRICE")


def test_price_table_from_toml() -> None:
    toml = {"amoot": {"ucs2": 1000, "gsm7": 800, "MCI": {"ucs2": 950}}, "ghasedak": 155}
    amoot = price_table_from_toml(toml, "amoot", "smsdispatch.toml [prices]")
    assert amoot.per_part(Operator.MCI, Alphabet.UCS2) == 950
    assert amoot.per_part(Operator.IRANCELL, Alphabet.UCS2) == 1000
    assert price_table_from_toml(toml, "ghasedak", "t").per_part(Operator.MCI, Alphabet.GSM7) == 155
    assert not price_table_from_toml(toml, "negin", "t")


def test_cost_by_operator_and_no_price_gives_a_hint() -> None:
    t = tally_of(OK_TEXT, block([MCI, IRANCELL, IRANCELL], name=["a", "b", "c"]))
    s = summary(t, prices=parse_price_setting("ucs2=1000,MCI=900", "SMSDISPATCH_AMOOT_PRICE"))
    assert s.cost is not None and s.cost.estimate == 2900
    assert s.cost.by_operator[Operator.MCI] == 900 and s.cost.by_operator[Operator.IRANCELL] == 2000
    none = summary(t, prices=parse_price_setting("gsm7=800", "X"))  # no UCS-2 price: no estimate
    assert none.cost is None and none.cost_hint and "SMSDISPATCH_AMOOT_PRICE" in none.cost_hint


# --- each check ----------------------------------------------------------------------------------


class Bal:
    def __init__(self, amount: float, unit: str) -> None:
        self.amount, self.unit = amount, unit


def test_credit_below_the_estimate_refuses_unless_allow_partial() -> None:
    t = tally_of("hi لغو11", block(phones(20)))
    prices = PriceTable({(None, None): 1000.0}, "provider")
    s = summary(t, prices=prices, balance=Bal(10_000, "rial"))
    assert s.credit is not None and (s.credit.needed, s.credit.enough) == (20_000, False)
    (refusal,) = s.refusals
    assert refusal.code is Check.CREDIT and refusal.override == "--allow-partial"
    assert refusal.line() == (
        "refused by preflight check credit: credit 10,000 rial is below the 20,000 rial this campaign needs "
        "(20 SMS parts); it would stop part-way; to send anyway: --allow-partial"
    )
    allowed = summary(
        t,
        PreflightOptions(window="9-21", allow_partial=True, strict=True),
        prices=prices,
        balance=Bal(10_000, "rial"),
    )
    assert codes(allowed) == {Check.CREDIT: Severity.WARN}
    assert summary(t, prices=prices, balance=Bal(20_000, "rial")).findings == []
    sms = summary(
        t, balance=Bal(19, "sms")
    )  # panels that count SMS: parts against the balance, no price needed
    assert codes(sms) == {Check.CREDIT: Severity.REFUSE} and sms.credit.needed == 20  # type: ignore[union-attr]
    assert summary(t, balance=Bal(1, "rial")).credit.enough is None  # type: ignore[union-attr]  # no price: unknown


def test_same_list_and_text_as_an_unfinished_campaign_refuses_naming_it() -> None:
    t = tally_of("hi لغو11", block(phones(3)))
    other = EarlierCampaign(7, "yalda", "paused", t.fingerprint())
    s = summary(t, earlier=[EarlierCampaign(6, "x", "running", "f" * 64), other])
    (refusal,) = s.refusals
    assert refusal.code is Check.DUPLICATE and refusal.override == "--allow-duplicate"
    assert 'campaign 7 "yalda", paused' in refusal.message and "smsdispatch resume 7" in refusal.message
    ok = summary(t, PreflightOptions(window="9-21", allow_duplicate=True), earlier=[other])
    assert codes(ok) == {Check.DUPLICATE: Severity.WARN}


def test_continue_command_per_state_and_mode() -> None:
    c = lambda state: EarlierCampaign(3, "n", state, None)  # noqa: E731
    assert continue_command(c("paused"), distributed=True) == "smsdispatch resume 3"
    assert continue_command(c("running"), distributed=False) == "smsdispatch run 3"
    assert continue_command(c("running"), distributed=True) == "smsdispatch watch 3"
    assert continue_command(c("scheduled"), distributed=False) == "smsdispatch watch 3"


def test_recent_recipients_warn_with_count_or_move_to_rejects() -> None:
    nums = phones(5)
    recent = {nums[0]: 7, nums[3]: 7, nums[4]: 8}
    s = summary(tally_of("hi لغو11", block(nums), recent=recent))
    (f,) = s.findings
    assert (f.code, f.severity, f.override) == (Check.RECENT, Severity.WARN, "--skip-recent")
    assert f.message.startswith("3 recipients got a message from another campaign in the last 24 h")
    assert s.recipients == 5 and s.recent == 3
    t = Tally(Template("hi لغو11"), recent=recent, skip_recent=True)
    kept = t.add(block(nums))
    assert kept["phone"].tolist() == nums[1:3]
    skipped = summary(t)
    assert skipped.findings == [] and skipped.recipients == 2
    assert (
        skipped.rejected["sent recently (campaign 7)"] == 2
        and skipped.rejected["sent recently (campaign 8)"] == 1
    )
    assert skipped.skipped_recent[0] == (2, nums[0], 7)
    assert skipped.fingerprint == s.fingerprint  # skipping does not hide a re-send of the same list


@pytest.mark.parametrize(
    ("text", "has"),
    [
        ("تخفیف لغو11", True),
        ("تخفیف لغو ۱۱", True),
        ("تخفیف\nلغو-١١", True),
        ("لغو۱۱", True),
        ("تخفیف", False),
        ("لغو 12", False),
        ("11", False),
    ],
)
def test_opt_out_token_spellings(text: str, has: bool) -> None:
    assert has_opt_out_token(text) is has


def test_promotional_without_token_warns_transactional_does_not() -> None:
    t = tally_of("تخفیف ویژه", block(phones(2)))
    (f,) = summary(t).findings
    assert (f.code, f.severity) == (Check.OPT_OUT_TOKEN, Severity.WARN) and "لغو11" in f.message
    assert summary(t, PreflightOptions(campaign_type=CampaignType.TRANSACTIONAL)).findings == []


@pytest.mark.parametrize("text", ["see https://x.ir/a", "www.shop.com", "digikala.com/off", "کد در shop.ir"])
def test_a_link_warns(text: str) -> None:
    assert codes(summary(tally_of(text + " لغو11", block(phones(2))))) == {Check.LINK: Severity.WARN}


def test_a_link_in_a_field_value_warns_with_a_count() -> None:
    s = summary(tally_of("{name} لغو11", block(phones(3), name=["a", "b.ir", "c"])))
    (f,) = s.findings
    assert f.code is Check.LINK and f.message.startswith("1 messages carry a link (b.ir)")
    assert summary(tally_of("v1.2 e.g. 3.5 لغو11", block(phones(1)))).findings == []


def test_more_parts_than_the_maximum_warns() -> None:
    t = tally_of("x" * 1500 + " لغو11", block(phones(2)))  # 1,506 Latin... with Persian: UCS-2, 23 parts
    s = summary(t)
    assert s.parts_histogram == {23: 2}
    (f,) = s.findings
    assert (f.code, f.severity) == (Check.PARTS, Severity.WARN)
    assert f.message.startswith("2 messages are longer than 4 SMS parts (up to 23)")
    assert summary(t, PreflightOptions(window="9-21", max_parts=23)).findings == []


def test_empty_placeholder_warns_with_count_and_row() -> None:
    s = summary(
        tally_of(
            "{name} {city} لغو11", block(phones(4), name=["a", " ", None, "d"], city=["x", "y", "z", ""])
        )
    )
    (f,) = s.findings
    assert (f.code, f.severity) == (Check.EMPTY_PLACEHOLDER, Severity.WARN)
    assert f.message == "{name}, {city} came out empty for 3 recipients (first: row 3)"


def test_promotional_without_window_warns() -> None:
    t = tally_of("hi لغو11", block(phones(1)))
    (f,) = summary(t, PreflightOptions()).findings
    assert (f.code, f.severity) == (Check.NO_WINDOW, Severity.WARN) and f.override.startswith("--window")


def test_strict_turns_every_warning_into_a_refusal_naming_its_override() -> None:
    t = tally_of(
        "{name} https://x.ir " + "x" * 700, block(phones(2), name=["", "a"]), recent={phones(1)[0]: 4}
    )
    s = summary(t, PreflightOptions(strict=True))
    assert set(codes(s)) == {
        Check.RECENT,
        Check.OPT_OUT_TOKEN,
        Check.LINK,
        Check.PARTS,
        Check.EMPTY_PLACEHOLDER,
        Check.NO_WINDOW,
    }
    assert all(
        f.severity is Severity.REFUSE and f.override.endswith("or unset SMSDISPATCH_STRICT")
        for f in s.findings
    )
    assert {f.severity for f in summary(t, PreflightOptions()).findings} == {Severity.WARN}


# --- settings and the JSON contract --------------------------------------------------------------


def test_options_from_env() -> None:
    o = PreflightOptions.from_env(
        {"SMSDISPATCH_MAX_PARTS": "6", "SMSDISPATCH_STRICT": "1", "SMSDISPATCH_FREQUENCY_CAP": "12h"},
        skip_recent=True,
    )
    assert (o.max_parts, o.strict, o.frequency_cap, o.skip_recent) == (6, True, 43200, True)
    assert PreflightOptions.from_env({}) == PreflightOptions()
    assert parse_duration("90m", "X") == 5400 and parse_duration("3600", "X") == 3600
    with pytest.raises(PreflightSettingError, match="SMSDISPATCH_MAX_PARTS='four'"):
        PreflightOptions.from_env({"SMSDISPATCH_MAX_PARTS": "four"})
    with pytest.raises(PreflightSettingError, match="SMSDISPATCH_FREQUENCY_CAP='soon'"):
        PreflightOptions.from_env({"SMSDISPATCH_FREQUENCY_CAP": "soon"})


def test_to_json_is_exactly_the_contract() -> None:
    t = tally_of("{name} لغو11", block([MCI, IRANCELL], name=["a", "b"]))
    s = summary(
        t, PreflightOptions(), prices=PriceTable({(None, None): 1000.0}, "p"), balance=Bal(1000, "rial")
    )
    data = json.loads(json.dumps(s.to_json(), ensure_ascii=False))
    # the preflight's first keys in their order, then the ones added since (the operator blacklist memory)
    assert list(data) == [
        "operators",
        "parts_histogram",
        "cost",
        "credit",
        "warnings",
        "preview",
        "blacklisted",
    ]
    assert data["blacklisted"] is None  # nothing known about these numbers
    assert data["operators"] == {"MCI": 1, "Irancell": 1, "Rightel": 0, "other": 0}
    assert data["parts_histogram"] == {"1": 2}
    assert data["cost"] == {
        "estimate": 2000.0,
        "currency": "IRR",
        "by_operator": {"MCI": 1000.0, "Irancell": 1000.0, "Rightel": 0.0, "other": 0.0},
    }
    assert data["credit"] == {"balance": 1000.0, "unit": "rial", "enough": False}
    assert [w["code"] for w in data["warnings"]] == ["credit", "no-window"]  # refusals first
    assert all(set(w) == {"code", "message"} for w in data["warnings"])
    assert data["preview"] == [{"row": 2, "text": "a لغو11", "parts": 1}]
    empty = summary(tally_of("hi لغو11", block(phones(1))), PROMO_OK).to_json()
    assert (empty["cost"], empty["credit"], empty["warnings"]) == (None, None, [])


# --- what a person sees --------------------------------------------------------------------------


def test_rendered_summary_shows_rial_operators_previews_and_findings() -> None:
    import io

    from rich.console import Console

    from dispatcher.cli.preflight_view import confirm, render_summary

    t = tally_of("{name} تخفیف", block([MCI, IRANCELL], name=["علی", ""]))
    s = summary(
        t, PreflightOptions(), prices=PriceTable({(None, None): 1250.0}, "p"), balance=Bal(1000, "rial")
    )
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render_summary(s))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "≈ 2,500 rial" in out and "1,000 rial: NOT enough" in out
    assert "MCI (همراه اول) 1" in out and "ported numbers" in out
    assert (
        "REFUSED credit:" in out and "warning opt-out-token:" in out and "warning empty-placeholder:" in out
    )
    assert "empty placeholder" in out and "علی تخفیف" in out
    assert out.index("REFUSED") < out.index("warning")
    assert confirm(console, assume_yes=False, interactive=False) and confirm(
        console, assume_yes=True, interactive=True
    )


# --- what the caps cover, the blacklist memory, the duplicate window ------------------------------


def test_a_budget_or_part_cap_below_the_estimate_warns_what_it_covers_and_strict_refuses() -> None:
    t = tally_of("hi لغو11", block(phones(473)))
    prices = PriceTable({(None, None): 1200.0}, "p")
    capped = PreflightOptions(window="9-21", budget=200_000, chunk=100)
    (f,) = summary(t, capped, prices=prices).findings
    assert (f.code, f.severity) == (Check.BUDGET, Severity.WARN)
    assert f.message == (
        "the budget covers about 166 of 473 recipients; the campaign will pause there (200,000 of the "
        "567,600 rial estimated; charged 100 recipients at a time, it pauses after 100)"
    )
    assert f.override == "--budget 567,600 to cover them all"
    strict = PreflightOptions(window="9-21", budget=200_000, chunk=100, strict=True)
    assert codes(summary(t, strict, prices=prices)) == {Check.BUDGET: Severity.REFUSE}
    assert summary(t, PreflightOptions(window="9-21", budget=600_000), prices=prices).findings == []
    assert summary(t, capped).findings == []  # no price: nothing to compare with (the budget needs one)
    (parts,) = summary(t, PreflightOptions(window="9-21", part_cap=300, chunk=100)).findings
    assert parts.message == (  # whole chunks of 100 parts: the pause is where it says, no chunk note
        "the part cap covers about 300 of 473 recipients; the campaign will pause there "
        "(300 of the 473 SMS parts to send)"
    )
    assert parts.override == "--max-parts 473 to cover them all"


def test_the_blacklist_memory_skips_counts_and_prices_what_it_knows() -> None:
    nums = phones(6)
    memory = RecentSends.from_pairs([(nums[1], 4), (nums[4], 5), (nums[4], 7)])  # 7 learnt it last
    prices = PriceTable({(None, None): 1000.0}, "p")
    t = Tally(Template("hi {name} لغو11"), blacklisted=memory)
    kept = t.add(block(nums, name=list("abcdef")))
    assert kept["phone"].tolist() == [nums[0], nums[2], nums[3], nums[5]]
    s = summary(t, prices=prices)
    assert s.recipients == 4 and s.skipped_blacklisted == [(3, nums[1], 4), (6, nums[4], 7)]
    assert s.rejected["blacklisted by the operator (campaign 4)"] == 1
    assert s.blacklisted is not None and (s.blacklisted.count, s.blacklisted.saves) == (2, 2000.0)
    assert s.fingerprint == tally_of("hi {name} لغو11", block(nums, name=list("abcdef"))).fingerprint()
    kept_all = Tally(Template("hi {name} لغو11"), blacklisted=memory, skip_blacklisted=False)
    assert len(kept_all.add(block(nums, name=list("abcdef")))) == 6
    assert summary(kept_all, prices=prices).blacklisted.skipped is False  # type: ignore[union-attr]


def test_a_finished_campaign_counts_as_a_duplicate_within_the_window_only() -> None:
    from datetime import UTC, datetime, timedelta

    t = tally_of("hi لغو11", block(phones(3)))
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    done = EarlierCampaign(
        4, "yalda", "completed", t.fingerprint(), now - timedelta(days=3), now - timedelta(days=2)
    )
    (refusal,) = summary(t, earlier=[done], now=now).refusals
    assert refusal.message == (
        'the same recipients and text as campaign 4 "yalda", completed 2026-11-29 12:30 +03:30 '
        "(created 2026-11-28 12:30 +03:30); its recipients would get it twice"
    )
    old = EarlierCampaign(
        4, "yalda", "completed", t.fingerprint(), now - timedelta(days=9), now - timedelta(days=8)
    )
    assert summary(t, earlier=[old], now=now).refusals == []
    wider = PreflightOptions(window="09:00-21:00", duplicate_window=10 * 86400)
    assert summary(t, wider, earlier=[old], now=now).refusals[0].code is Check.DUPLICATE


def test_recent_names_every_campaign_the_identical_one_first() -> None:
    nums = phones(5)
    recent = RecentSends.from_pairs([(nums[0], 2), (nums[1], 2), (nums[0], 3), (nums[2], 9), (nums[3], 9)])
    t = tally_of("hi لغو11", block(nums), recent=recent)
    same = EarlierCampaign(2, "first", "completed", t.fingerprint())
    s = summary(t, PreflightOptions(window="9-21", allow_duplicate=True), earlier=[same])
    (f,) = [f for f in s.findings if f.code is Check.RECENT]
    assert f.message.startswith("4 recipients got a message from another campaign in the last 24 h")
    assert f.message.endswith("(campaign 2 (the same list and text): 2, campaign 9: 2, campaign 3: 1)")


def test_duplicate_window_and_blacklist_memory_settings() -> None:
    o = PreflightOptions.from_env(
        {"SMSDISPATCH_DUPLICATE_WINDOW": "2d", "SMSDISPATCH_BLACKLIST_MEMORY": "45"}
    )
    assert (o.duplicate_window, o.blacklist_memory) == (2 * 86400, 45 * 86400)
    assert PreflightOptions.from_env({"SMSDISPATCH_BLACKLIST_MEMORY": "12h"}).blacklist_memory == 12 * 3600
    with pytest.raises(PreflightSettingError, match="SMSDISPATCH_BLACKLIST_MEMORY='a month'"):
        PreflightOptions.from_env({"SMSDISPATCH_BLACKLIST_MEMORY": "a month"})
