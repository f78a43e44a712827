"""The function around a failing line, per language, and the source map VLQ decoder."""

from __future__ import annotations

import pytest

from tools.code._blocks import Block, block_named, enclosing_block
from tools.code._sourcemap import decode_vlq, lookup, parse_map

PYTHON = """import os


class Cart:
    def total(self, items):
        subtotal = 0
# a column-0 comment does not end the method
        for item in items:
            subtotal += item
        return subtotal

    def empty(self):
        return not self.items


def main():
    return Cart().total([])
"""

WRAPPED = """def compute_total(
    order: dict,
    items: list,
) -> int:
    subtotal = sum(items)
    return subtotal


class Service:
    def charge(
        self,
        order,
    ):
        return order["total"]
"""

JAVA = """package com.acme.pay;

public class PriceService {
    private final Map<String, Integer> rates;

    public int total(Map<String, Integer> order,
                     String currency) {
        int amount = order.get("amount");
        if (amount > 0) {
            return amount * rates.get(currency);
        }
        return 0;
    }
}
"""

GO = """package pay

func (s *Service) Charge(ctx context.Context, o *Order) (int, error) {
	if o == nil {
		return 0, errors.New("nil order")
	}
	total := o.First()
	return total, nil
}
"""

JS = """const fees = {
  card: 30,
};

const computeFee = async (order) => {
  const fee = fees[order.method];
  return fee * 2;
};

function main() {
  return computeFee({ method: "card" });
}
"""

KOTLIN = """class Pricing {
    fun total(order: Order): Int {
        val rate = order.rate ?: error("no rate")
        return order.amount * rate
    }
}
"""


@pytest.mark.parametrize(
    ("path", "text", "line", "expected"),
    [
        ("cart.py", PYTHON, 9, Block(5, 10, "total")),
        ("cart.py", PYTHON, 13, Block(12, 13, "empty")),
        ("cart.py", PYTHON, 17, Block(16, 17, "main")),
        ("cart.py", PYTHON, 1, None),
        ("total.py", WRAPPED, 6, Block(1, 6, "compute_total")),
        ("total.py", WRAPPED, 14, Block(10, 14, "charge")),
        ("PriceService.java", JAVA, 10, Block(6, 13, "total")),
        ("PriceService.java", JAVA, 4, Block(3, 14, "PriceService")),
        ("pay.go", GO, 5, Block(3, 9, "Charge")),
        ("pay.go", GO, 7, Block(3, 9, "Charge")),
        ("fees.js", JS, 7, Block(5, 8, "computeFee")),
        ("fees.js", JS, 11, Block(10, 12, "main")),
        ("Pricing.kt", KOTLIN, 3, Block(2, 5, "total")),
        ("notes.md", "text\n", 1, None),
    ],
)
def test_enclosing_block(path, text, line, expected):
    assert enclosing_block(path, text.splitlines(), line) == expected


def test_block_named_finds_a_definition_by_name():
    assert block_named("cart.py", PYTHON.splitlines(), "empty") == Block(12, 13, "empty")
    assert block_named("pay.go", GO.splitlines(), "Charge") == Block(3, 9, "Charge")
    assert block_named("pay.go", GO.splitlines(), "Refund") is None


@pytest.mark.parametrize(
    ("segment", "values"),
    [
        ("A", [0]),
        ("C", [1]),
        ("D", [-1]),
        ("gB", [16]),
        ("hB", [-16]),
        ("AAAA", [0, 0, 0, 0]),
        ("SAAQ", [9, 0, 0, 8]),
        ("2HwcqxB", [123, 456, 789]),
        ("2HwcrxB", [123, 456, -789]),
    ],
)
def test_decode_vlq(segment, values):
    assert decode_vlq(segment) == values


@pytest.mark.parametrize("bad", ["!", "g", "ggggggggggggggA"])
def test_decode_vlq_refuses_bad_input(bad):
    with pytest.raises(ValueError):
        decode_vlq(bad)


def test_lookup_is_none_for_malformed_or_unmapped_positions():
    assert parse_map("not json") is None
    assert parse_map('{"version": 3}') is None
    data = parse_map('{"version": 3, "sources": ["a.ts"], "mappings": ";AAAA,IAAI;!!"}')
    assert data is not None
    assert lookup(data, 1, 1) is None  # an empty first line
    assert lookup(data, 2, 5) is not None and lookup(data, 2, 5).line == 1
    assert lookup(data, 3, 1) is None  # corrupt segment
    assert lookup(data, 9, 1) is None  # past the end
    rooted = parse_map('{"version": 3, "sourceRoot": "src", "sources": ["a.ts"], "mappings": "AAAA"}')
    assert rooted is not None and lookup(rooted, 1, 1).source == "src/a.ts"
