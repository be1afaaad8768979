from player.ssip import replies


def test_a_reply_is_its_data_lines_then_its_last_line_each_ending_in_crlf():
    assert replies.reply(replies.MESSAGE_QUEUED, ["12"]) == b"225-12\r\n225 OK MESSAGE QUEUED\r\n"
    assert replies.reply(replies.STOPPED) == b"210 OK STOPPED\r\n"


def test_an_event_names_the_message_then_the_client():
    assert replies.event("begin", 7, 3) == b"701-7\r\n701-3\r\n701 BEGIN\r\n"
    assert replies.event("index_marks", 7, 3, "m1") == (
        b"700-7\r\n700-3\r\n700-m1\r\n700 INDEX MARK\r\n"
    )
