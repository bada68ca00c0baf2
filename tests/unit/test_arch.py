"""The runner's GPU architecture from its name, base tags per architecture, the image override."""

import pytest

from lanmirror.errors import BadInput
from lanmirror.sources.arch import ArchRule, base_tags_for, image_override, needs_arch, parse_map


@pytest.mark.parametrize(("runner", "arch"), [("linux-mi325-gpu-3", "mi30x"), ("linux-mi300-gpu-1", "mi30x"),
                                              ("LINUX-MI355-GPU-8", "mi35x"), ("ci-mi350x-12", "mi35x")])
def test_runner_names_map_to_their_architecture(runner, arch):
    assert ArchRule().detect(runner) == arch


def test_a_gpu_the_map_lacks_is_refused_naming_the_map_and_the_fix():
    with pytest.raises(BadInput, match=r"unsupported GPU architecture 'mi400'.*mi325=mi30x.*--arch-map"):
        ArchRule().detect("linux-mi400-gpu-1")


def test_a_name_without_a_gpu_says_to_give_the_architecture():
    with pytest.raises(BadInput, match="--gpu-arch"):
        ArchRule().detect("build-box-7")


def test_pattern_and_map_are_configurable():
    rule = ArchRule(r"-([hb]\d+)-", parse_map("h100=hopper, h200=hopper\nb200=blackwell"))
    assert rule.detect("gpu-h200-02") == "hopper" and rule.detect("gpu-B200-01") == "blackwell"
    with pytest.raises(BadInput, match="GPU=ARCH"):
        parse_map("h100")
    with pytest.raises(BadInput, match="invalid arch pattern"):
        ArchRule("(unclosed").detect("x")


def test_base_tags_per_architecture_come_first_then_the_template():
    tags = base_tags_for("mi35x", ["v0.5.5-rocm700-{arch}"], ["mi30x=v0.5.5-rocm700-mi30x",
                                                               "mi35x=v0.5.5-rocm720-mi35x"])
    assert tags == ["v0.5.5-rocm720-mi35x", "v0.5.5-rocm700-mi35x"]
    assert base_tags_for("mi30x", [], ["mi30x=a", "mi35x=b"]) == ["a"]
    with pytest.raises(BadInput, match="unsupported GPU architecture 'mi35x': no base tag"):
        base_tags_for("mi35x", [], ["mi30x=a"])
    with pytest.raises(BadInput, match="only placeholder"):
        base_tags_for("mi30x", ["v1-{gpu}"], [])
    with pytest.raises(BadInput, match="ARCH=TAG"):
        base_tags_for("mi30x", [], ["v1"])


def test_an_architecture_is_needed_only_when_something_asks_for_one():
    assert not needs_arch(["v0.5.5-rocm700-mi30x"], [], "")
    assert needs_arch(["v0.5.5-rocm700-{arch}"], [], "") and needs_arch([], ["a=b"], "") and needs_arch([], [], "X")


def test_the_bare_override_is_for_the_default_architecture_only():
    env = {"AMD_CI_IMAGE": "rocm/sgl-dev:mi30x-special", "AMD_CI_IMAGE_MI35X": "rocm/sgl-dev:mi35x-special"}
    assert image_override("AMD_CI_IMAGE", "mi35x", env) == ("AMD_CI_IMAGE_MI35X", "rocm/sgl-dev:mi35x-special")
    assert image_override("AMD_CI_IMAGE", "mi30x", env) == ("AMD_CI_IMAGE", "rocm/sgl-dev:mi30x-special")
    # The mi30x image must never be pulled onto an mi35x runner.
    assert image_override("AMD_CI_IMAGE", "mi35x", {"AMD_CI_IMAGE": "rocm/sgl-dev:mi30x-special"}) is None
    assert image_override("AMD_CI_IMAGE", "mi35x", {"AMD_CI_IMAGE_MI35X": "  "}) is None
    with pytest.raises(BadInput, match="environment variable name"):
        image_override("AMD-CI", "mi30x", {})


def test_a_forced_images_login_comes_from_its_own_variables_and_is_hidden_from_helpers(monkeypatch):
    from lanmirror.authn.keychain import override_credentials
    from lanmirror.authn.secretenv import blanked_secrets

    monkeypatch.setenv("AMD_CI_IMAGE_MI35X_USERNAME", "bot")
    assert override_credentials("AMD_CI_IMAGE_MI35X") is None  # a user without a password is no login
    monkeypatch.setenv("AMD_CI_IMAGE_MI35X_PASSWORD", "s3cret")
    creds = override_credentials("AMD_CI_IMAGE_MI35X")
    assert creds is not None and (creds.username, creds.password) == ("bot", "s3cret")
    assert "AMD_CI_IMAGE_MI35X_USERNAME" in creds.source and "s3cret" not in repr(creds)
    assert blanked_secrets({"AMD_CI_IMAGE_MI35X_PASSWORD": "s3cret", "HOME": "/root"}) == {
        "AMD_CI_IMAGE_MI35X_PASSWORD": ""}
