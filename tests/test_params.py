import pytest

from depthapp.errors import UsageError
from depthapp.params import Parameter, resolve_parameters

DECLARED = (Parameter("window", "int", 5, "census window", 3, 9, odd=True),
            Parameter("p2", "float", 32.0, "penalty", 0, 1000),
            Parameter("lr_check", "bool", True, "left-right check"),
            Parameter("paths", "choice", 8, "paths", choices=(4, 8)))


def test_defaults_and_conversion_from_cli_strings():
    values = resolve_parameters(DECLARED, {"window": "7", "lr_check": "off", "paths": "4"}, "x")
    assert values == {"window": 7, "p2": 32.0, "lr_check": False, "paths": 4}


@pytest.mark.parametrize("given,message", [({"window": 4}, "must be odd"),
                                           ({"window": 11}, "above the maximum"),
                                           ({"p2": -1}, "below the minimum"),
                                           ({"paths": 5}, "one of 4, 8"),
                                           ({"window": "abc"}, "not a int"),
                                           ({"speed": 1}, "does not take speed")])
def test_bad_values_are_usage_errors(given, message):
    with pytest.raises(UsageError, match=message):
        resolve_parameters(DECLARED, given, "x")


def test_describe_names_flag_range_and_default():
    assert DECLARED[0].describe() == "--window int [3..9] (default 5): census window"


def test_a_bad_default_is_caught_at_declaration():
    with pytest.raises(UsageError):
        Parameter("n", "int", 0, "n", 1, 3)
