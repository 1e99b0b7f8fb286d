from zerocloud.jobrun import iter_reader


def test_iter_reader_rechunks_exactly():
    read = iter_reader([b'abc', b'', b'defgh', b'i'])
    assert read(2) == b'ab'
    assert read(5) == b'c'
    assert read(3) == b'def'
    assert read(100) == b'gh'
    assert read(100) == b'i'
    assert read(100) == b''
    assert read(1) == b''


def test_iter_reader_of_nothing():
    assert iter_reader([])(10) == b''
