//! The PromQL lexer: an expression's bytes into tokens with their byte offsets.

use super::duration::parse_duration_ms;
use super::parse::ParseError;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    Dur(i64),
    Op(&'static str),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    End,
}

/// The tokens of `text`, each with its byte offset, ending with [`Tok::End`].
pub(super) fn lex(text: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let err = |at: usize, message: String| ParseError {
        expr: text.to_owned(),
        at,
        message,
    };
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut after_bracket = false;
    while i < b.len() {
        let c = b[i] as char;
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let tok = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            '"' | '\'' => {
                let (s, end) = lex_string(b, i).map_err(|m| err(i, m))?;
                i = end;
                out.push((start, Tok::Str(s)));
                continue;
            }
            _ if after_bracket && c.is_ascii_digit() => {
                while i < b.len() && (b[i] as char).is_ascii_alphanumeric() {
                    i += 1;
                }
                let d = parse_duration_ms(&text[start..i]).map_err(|m| err(start, m))?;
                out.push((start, Tok::Dur(d)));
                continue;
            }
            _ if c.is_ascii_digit()
                || (c == '.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                while i < b.len()
                    && ((b[i] as char).is_ascii_alphanumeric()
                        || b[i] == b'.'
                        || ((b[i] == b'+' || b[i] == b'-') && matches!(b[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                let n: f64 = text[start..i]
                    .parse()
                    .map_err(|_| err(start, format!("bad number {:?}", &text[start..i])))?;
                out.push((start, Tok::Num(n)));
                continue;
            }
            _ if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                while i < b.len()
                    && ((b[i] as char).is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                out.push((start, Tok::Ident(text[start..i].to_owned())));
                continue;
            }
            _ => {
                let two = text.get(i..i + 2).unwrap_or("");
                let op = ["==", "!=", ">=", "<=", "=~", "!~"]
                    .into_iter()
                    .find(|o| *o == two);
                if let Some(o) = op {
                    i += 2;
                    out.push((start, Tok::Op(o)));
                    continue;
                }
                match c {
                    '+' => Tok::Op("+"),
                    '-' => Tok::Op("-"),
                    '*' => Tok::Op("*"),
                    '/' => Tok::Op("/"),
                    '>' => Tok::Op(">"),
                    '<' => Tok::Op("<"),
                    '=' => Tok::Op("="),
                    _ => return Err(err(i, format!("unexpected character {c:?}"))),
                }
            }
        };
        after_bracket = tok == Tok::LBracket;
        out.push((start, tok));
        i += 1;
    }
    out.push((b.len(), Tok::End));
    Ok(out)
}

fn lex_string(b: &[u8], start: usize) -> Result<(String, usize), String> {
    let quote = b[start];
    let mut i = start + 1;
    let mut out = Vec::new();
    while i < b.len() {
        match b[i] {
            c if c == quote => {
                let s = String::from_utf8(out).map_err(|e| e.to_string())?;
                return Ok((s, i + 1));
            }
            b'\\' => {
                let c = *b.get(i + 1).ok_or("unterminated escape")?;
                out.push(match c {
                    b'n' => b'\n',
                    b't' => b'\t',
                    other => other,
                });
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err("unterminated string".into())
}
