// What reaches a terminal: no control sequence, no fake line, no reordering.
#include <gtest/gtest.h>

#include "display.hpp"

using hawf::shown;
using hawf::shown_text;

TEST(Display, PlainTextIsUnchanged) {
    EXPECT_EQ(shown("lr=1e-4 continue"), "lr=1e-4 continue");
    EXPECT_EQ(shown("Grüße, 学习率 😀"), "Grüße, 学习率 😀");
}

TEST(Display, TerminalSequencesAreEscaped) {
    EXPECT_EQ(shown("\x1b[2J\x1b]0;OWNED\x1b\\"), "\\e[2J\\e]0;OWNED\\e\\\\");
    EXPECT_EQ(shown(std::string("a\0b", 3)), "a\\x00b");
    EXPECT_EQ(shown("\x07\x7f"), "\\x07\\x7f");
    EXPECT_EQ(shown("\xc2\x9b" "31m"), "\\u009b31m");  // C1 CSI in UTF-8
}

TEST(Display, NoFakeLines) {
    EXPECT_EQ(shown("alice\n4242:x  pending  root"), "alice\\n4242:x  pending  root");
    EXPECT_EQ(shown("a\rb\tc"), "a\\rb\\tc");
    EXPECT_EQ(shown("a\xe2\x80\xa8" "b"), "a\\u2028b");  // line separator
}

TEST(Display, BackslashesCannotForgeEscapes) {
    EXPECT_EQ(shown("\\e[2J"), "\\\\e[2J");
    EXPECT_NE(shown("\\e"), shown("\x1b"));
}

TEST(Display, BidiAndInvisibleCharactersAreEscaped) {
    EXPECT_EQ(shown("ok\xe2\x80\xae" "txt.exe"), "ok\\u202etxt.exe");
    EXPECT_EQ(shown("a\xe2\x80\x8b" "b"), "a\\u200bb");
    EXPECT_EQ(shown("\xef\xbb\xbf" "x"), "\\ufeffx");
}

TEST(Display, InvalidUtf8IsShownAsBytes) {
    EXPECT_EQ(shown("\xff\xfe"), "\\xff\\xfe");
    EXPECT_EQ(shown("\xc0\xaf"), "\\xc0\\xaf");          // overlong '/'
    EXPECT_EQ(shown("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // surrogate
    EXPECT_EQ(shown("\xe2\x82"), "\\xe2\\x82");          // truncated
}

TEST(Display, ReportsKeepTheirLines) {
    EXPECT_EQ(shown_text("# Eval\n\tloss 0.1\n\x1b[31mred\r\n"), "# Eval\n\tloss 0.1\n\\e[31mred\\r\n");
}
