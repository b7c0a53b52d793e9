# This file is dual licensed under the terms of the Apache License, Version
# 2.0, and the BSD License. See the LICENSE file in the root of this repository
# for complete details.
#
# From packaging 24.0's sdist, tests/test_specifiers.py: TestSpecifier.test_specifiers, unchanged,
# with only the three parameter rows that 24.0 added with the fix for pypa/packaging#683
# (specifier matching when the specifier has an epoch and more components than the version).

import pytest

from packaging.specifiers import Specifier
from packaging.version import Version


class TestSpecifier:
    @pytest.mark.parametrize(
        ("version", "spec", "expected"),
        [
            (v, s, True)
            for v, s in [
                # Test that epochs are handled sanely
                ("2!1.0.0", "==2!1.0.0.0.*"),
            ]
        ]
        + [
            (v, s, False)
            for v, s in [
                # Test that epochs are handled sanely
                ("2!1.0", "==1.0.0.*"),
                ("1.0", "==2!1.0.0.*"),
            ]
        ],
    )
    def test_specifiers(self, version, spec, expected):
        spec = Specifier(spec, prereleases=True)

        if expected:
            # Test that the plain string form works
            assert version in spec
            assert spec.contains(version)

            # Test that the version instance form works
            assert Version(version) in spec
            assert spec.contains(Version(version))
        else:
            # Test that the plain string form works
            assert version not in spec
            assert not spec.contains(version)

            # Test that the version instance form works
            assert Version(version) not in spec
            assert not spec.contains(Version(version))
