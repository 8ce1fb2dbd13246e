from portal_text.memo import word_cache


def test_a_word_is_computed_once_and_a_body_sized_token_is_never_kept() -> None:
    calls: list[str] = []

    @word_cache(8, longest=16)
    def shout(token: str) -> str:
        calls.append(token)
        return token.upper()

    assert shout("đảng") == shout("đảng") == "ĐẢNG"
    assert calls == ["đảng"]  # the second call came from the cache

    run = "x" * 17  # one run without spaces, longer than a word
    assert shout(run) == shout(run) == run.upper()
    assert calls == ["đảng", run, run]  # computed each time: nothing body-sized is kept
