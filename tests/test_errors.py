from __future__ import annotations

import inspect

import portone_recon.errors as errors
from portone_recon.errors import RowProblem, ValidationError


def test_every_error_descends_from_the_root_and_is_drawn() -> None:
    doc = errors.__doc__ or ""
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__ == errors.__name__
    ]
    assert len(classes) > 15
    for cls in classes:
        assert issubclass(cls, errors.PortOneReconError)
        assert cls.__name__ in doc, f"{cls.__name__} is missing from the tree in errors.py's docstring"


def test_http_error_keeps_korean_message_verbatim() -> None:
    exc = errors.BusinessError(
        http_status=200,
        code=1,
        message="이미 전액취소된 주문입니다.",
        method="POST",
        endpoint="/payments/cancel",
    )
    assert exc.code == 1
    assert "이미 전액취소된 주문입니다." in str(exc)
    assert str(exc).startswith("POST /payments/cancel")


def test_validation_error_lists_at_most_ten_rows() -> None:
    problems = [RowProblem(row=i, column="amount", problem="not an integer", value="x") for i in range(1, 14)]
    exc = ValidationError("orders.csv", problems)
    text = str(exc)
    assert "orders.csv" in text and "13 problem(s)" in text
    assert "row 10, column 'amount'" in text
    assert "row 11," not in text
    assert "and 3 more" in text
