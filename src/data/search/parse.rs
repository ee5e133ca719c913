//! The search expression language → [`Expr`], and [`Expr`] → each engine's query syntax.
//!
//! ```text
//! or    := and ("OR" and)*
//! and   := unary ("AND"? unary)*
//! unary := ("NOT" | "-") unary | "(" or ")" | "\"phrase\"" "*"? | word ("*" | ":*")?
//! ```
//! Words are cut into runs of letters and digits, as both engines' tokenizers do, so
//! `e-mail` searches the phrase `e mail`. A negation must exclude from something: `a NOT b`
//! and `a -b` are fine, a lone `NOT b` or `a OR NOT b` is a 400 (neither engine can answer it
//! from its index).

use crate::data::query::ParseError;

use crate::limits::{MAX_SEARCH_BYTES as MAX_LEN, MAX_SEARCH_DEPTH as MAX_DEPTH, MAX_SEARCH_TERMS as MAX_TERMS};

/// A parsed search.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Tokens that must appear in this order (one token: a plain word); `prefix` lets the last
    /// token match any word it begins.
    Phrase {
        tokens: Vec<String>,
        prefix: bool,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

/// Parses a search text; a syntax error is a 400 that says what is wrong.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    if text.len() > MAX_LEN {
        return Err(invalid(&format!("it is longer than {MAX_LEN} bytes (MAX_SEARCH_BYTES)")));
    }
    let tokens = lex(text)?;
    if tokens.iter().filter(|t| matches!(t, Token::Phrase(..))).count() > MAX_TERMS {
        return Err(invalid(&format!("it has more than {MAX_TERMS} terms (MAX_SEARCH_TERMS)")));
    }
    let mut parser = Parser { tokens, pos: 0, depth: 0 };
    let expr = parser.or()?;
    if let Some(token) = parser.tokens.get(parser.pos) {
        return Err(invalid(&format!("unexpected {}", token.describe())));
    }
    check_negations(&expr, false)?;
    Ok(expr)
}

/// Words of a plain-text search (`plfts`): every word must appear.
pub fn all_words(text: &str) -> Result<Expr, ParseError> {
    let words: Vec<Expr> = text
        .split_whitespace()
        .map(tokens_of)
        .filter(|t| !t.is_empty())
        .map(|tokens| Expr::Phrase { tokens, prefix: false })
        .collect();
    one_or_all(words)
}

/// The whole text as one phrase (`phfts`).
pub fn phrase(text: &str) -> Result<Expr, ParseError> {
    let tokens = tokens_of(text);
    if tokens.is_empty() {
        return Err(invalid("it has no words"));
    }
    Ok(Expr::Phrase { tokens, prefix: false })
}

fn one_or_all(mut terms: Vec<Expr>) -> Result<Expr, ParseError> {
    match terms.len() {
        0 => Err(invalid("it has no words")),
        1 => Ok(terms.remove(0)),
        n if n > MAX_TERMS => Err(invalid(&format!("it has more than {MAX_TERMS} terms (MAX_SEARCH_TERMS)"))),
        _ => Ok(Expr::And(terms)),
    }
}

fn invalid(why: &str) -> ParseError {
    ParseError::at("search", format!("invalid search: {why}"))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    Phrase(Vec<String>, bool),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
            Token::And => "AND".into(),
            Token::Or => "OR".into(),
            Token::Not => "NOT".into(),
            Token::Phrase(words, _) => format!("'{}'", words.join(" ")),
        }
    }
}

/// Letters and digits, lower-cased; anything else separates tokens.
fn tokens_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).map(str::to_lowercase).collect()
}

fn lex(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, ch)) = chars.peek() {
        match ch {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' => {
                chars.next();
                tokens.push(if ch == '(' { Token::Open } else { Token::Close });
            }
            '-' if tokens_of_next_word(text, start + 1) => {
                chars.next();
                tokens.push(Token::Not);
            }
            '"' => {
                chars.next();
                let body_start = start + 1;
                let end =
                    text[body_start..].find('"').ok_or_else(|| invalid("a phrase is missing its closing '\"'"))?;
                let body = &text[body_start..body_start + end];
                // Skip the phrase and its closing quote.
                while chars.peek().is_some_and(|&(i, _)| i <= body_start + end) {
                    chars.next();
                }
                let prefix = chars.peek().is_some_and(|&(_, c)| c == '*');
                if prefix {
                    chars.next();
                }
                let words = tokens_of(body);
                if words.is_empty() {
                    return Err(invalid("a phrase has no words"));
                }
                tokens.push(Token::Phrase(words, prefix));
            }
            _ => {
                let mut end = text.len();
                for (i, c) in text[start..].char_indices() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '"') {
                        end = start + i;
                        break;
                    }
                }
                let word = &text[start..end];
                while chars.peek().is_some_and(|&(i, _)| i < end) {
                    chars.next();
                }
                match word {
                    "AND" | "&&" => tokens.push(Token::And),
                    "OR" | "||" => tokens.push(Token::Or),
                    "NOT" => tokens.push(Token::Not),
                    _ => {
                        let (body, prefix) = match word.strip_suffix(":*").or_else(|| word.strip_suffix('*')) {
                            Some(body) => (body, true),
                            None => (word, false),
                        };
                        let words = tokens_of(body);
                        if !words.is_empty() {
                            tokens.push(Token::Phrase(words, prefix));
                        } else if prefix {
                            return Err(invalid("'*' must follow a word"));
                        }
                        // A word of punctuation only (`+`, `…`) is no term: both engines skip it.
                    }
                }
            }
        }
    }
    Ok(tokens)
}

/// Whether a word (not a space or another operator) follows position `at`: `-rust` negates,
/// a lone `-` is punctuation.
fn tokens_of_next_word(text: &str, at: usize) -> bool {
    text[at..].chars().next().is_some_and(|c| c.is_alphanumeric() || c == '"' || c == '(')
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut terms = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::Or(terms) })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut terms = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(Token::And) => {
                    self.pos += 1;
                    terms.push(self.unary()?);
                }
                Some(Token::Open | Token::Not | Token::Phrase(..)) => terms.push(self.unary()?),
                _ => break,
            }
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::And(terms) })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let Some(token) = self.tokens.get(self.pos).cloned() else {
            return Err(invalid(if self.tokens.is_empty() { "it has no words" } else { "it ends too early" }));
        };
        self.pos += 1;
        match token {
            Token::Not => Ok(Expr::Not(Box::new(self.unary()?))),
            Token::Phrase(tokens, prefix) => Ok(Expr::Phrase { tokens, prefix }),
            Token::Open => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(invalid(&format!("parentheses are nested deeper than {MAX_DEPTH} (MAX_SEARCH_DEPTH)")));
                }
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err(invalid("a '(' is missing its ')'"));
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(inner)
            }
            other => Err(invalid(&format!("unexpected {}", other.describe()))),
        }
    }
}

/// Refuses negations that exclude from nothing: a `NOT` must sit in an `AND` beside at least
/// one term that is not negated.
fn check_negations(expr: &Expr, inside_and: bool) -> Result<(), ParseError> {
    let lone = || invalid("NOT must exclude from something: write 'a NOT b' or 'a -b'");
    match expr {
        Expr::Phrase { .. } => Ok(()),
        Expr::Not(inner) => {
            if !inside_and {
                return Err(lone());
            }
            check_negations(inner, false)
        }
        Expr::Or(terms) => terms.iter().try_for_each(|t| check_negations(t, false)),
        Expr::And(terms) => {
            if terms.iter().all(|t| matches!(t, Expr::Not(_))) {
                return Err(lone());
            }
            terms.iter().try_for_each(|t| check_negations(t, true))
        }
    }
}

impl Expr {
    /// FTS5 query syntax; `column` restricts the match to one indexed column. Every token is
    /// double-quoted (tokens hold only letters and digits).
    pub fn to_fts5(&self, column: Option<&str>) -> String {
        let mut out = String::new();
        if let Some(column) = column {
            // Column names are validated field names (letters, digits, `_`).
            out.push_str(&format!("{{{column}}} : ("));
        }
        self.write_fts5(&mut out);
        if column.is_some() {
            out.push(')');
        }
        out
    }

    fn write_fts5(&self, out: &mut String) {
        match self {
            Expr::Phrase { tokens, prefix } => {
                out.push('"');
                out.push_str(&tokens.join(" ").replace('"', "\"\""));
                out.push('"');
                if *prefix {
                    out.push_str(" *");
                }
            }
            Expr::Or(terms) => join_fts5(out, terms, " OR "),
            // FTS5's NOT is binary: `(a AND b) NOT c NOT d`.
            Expr::And(terms) => {
                let (negated, positive): (Vec<&Expr>, Vec<&Expr>) =
                    terms.iter().partition(|t| matches!(t, Expr::Not(_)));
                out.push('(');
                for (i, term) in positive.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" AND ");
                    }
                    term.write_fts5(out);
                }
                for term in negated {
                    if let Expr::Not(inner) = term {
                        out.push_str(" NOT ");
                        inner.write_fts5(out);
                    }
                }
                out.push(')');
            }
            // Only inside an `And` (see `check_negations`), which writes it itself.
            Expr::Not(inner) => inner.write_fts5(out),
        }
    }

    /// PostgreSQL `to_tsquery` syntax. Tokens hold only letters and digits and are quoted.
    pub fn to_tsquery(&self) -> String {
        let mut out = String::new();
        self.write_tsquery(&mut out);
        out
    }

    fn write_tsquery(&self, out: &mut String) {
        match self {
            Expr::Phrase { tokens, prefix } => {
                out.push('(');
                for (i, token) in tokens.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" <-> ");
                    }
                    out.push('\'');
                    out.push_str(&token.replace('\'', "''"));
                    out.push('\'');
                    if *prefix && i == tokens.len() - 1 {
                        out.push_str(":*");
                    }
                }
                out.push(')');
            }
            Expr::And(terms) => join_tsquery(out, terms, " & "),
            Expr::Or(terms) => join_tsquery(out, terms, " | "),
            Expr::Not(inner) => {
                out.push('!');
                inner.write_tsquery(out);
            }
        }
    }
}

fn join_fts5(out: &mut String, terms: &[Expr], sep: &str) {
    out.push('(');
    for (i, term) in terms.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        term.write_fts5(out);
    }
    out.push(')');
}

fn join_tsquery(out: &mut String, terms: &[Expr], sep: &str) {
    out.push('(');
    for (i, term) in terms.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        term.write_tsquery(out);
    }
    out.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(w: &str) -> Expr {
        Expr::Phrase { tokens: vec![w.into()], prefix: false }
    }

    #[test]
    fn words_phrases_prefixes_and_logic() {
        assert_eq!(parse("Rust").unwrap(), word("rust"));
        assert_eq!(parse("rust web").unwrap(), Expr::And(vec![word("rust"), word("web")]));
        assert_eq!(parse("rust AND web").unwrap(), parse("rust web").unwrap());
        assert_eq!(
            parse("\"web server\"* OR rus*").unwrap(),
            Expr::Or(vec![
                Expr::Phrase { tokens: vec!["web".into(), "server".into()], prefix: true },
                Expr::Phrase { tokens: vec!["rus".into()], prefix: true },
            ])
        );
        assert_eq!(parse("rust NOT go").unwrap(), Expr::And(vec![word("rust"), Expr::Not(Box::new(word("go")))]));
        assert_eq!(parse("rust -go").unwrap(), parse("rust NOT go").unwrap());
        assert_eq!(parse("(a OR b) c").unwrap(), Expr::And(vec![Expr::Or(vec![word("a"), word("b")]), word("c")]));
        // Words are cut as the tokenizers cut them.
        assert_eq!(parse("e-mail").unwrap(), Expr::Phrase { tokens: vec!["e".into(), "mail".into()], prefix: false });
        assert_eq!(parse("rust:*").unwrap(), Expr::Phrase { tokens: vec!["rust".into()], prefix: true });
        assert_eq!(parse("Ünïcode ß").unwrap(), Expr::And(vec![word("ünïcode"), word("ß")]));
    }

    #[test]
    fn renders_for_both_engines() {
        let e = parse("rust \"web server\" OR go* -java").unwrap();
        assert_eq!(e.to_fts5(None), "((\"rust\" AND \"web server\") OR (\"go\" * NOT \"java\"))");
        assert_eq!(e.to_tsquery(), "((('rust') & ('web' <-> 'server')) | (('go':*) & !('java')))");
        assert_eq!(word("x").to_fts5(Some("title")), "{title} : (\"x\")");
    }

    #[test]
    fn syntax_errors_name_the_search() {
        for bad in [
            "",
            "   ",
            "\"open",
            "(a",
            "a)",
            "a OR",
            "AND a",
            "NOT a",
            "a OR NOT b",
            "-a",
            "*",
            "\"\"",
            "()",
            "a (",
            &"(".repeat(40),
            &"a ".repeat(100),
            &"x".repeat(2000),
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("search"), "{bad:?}");
        }
    }

    #[test]
    fn hostile_text_cannot_reach_engine_syntax() {
        let e = parse("a OR x:* NEAR(b c) '; DROP TABLE t; -- {title}:z ^q").unwrap();
        for rendered in [e.to_fts5(None), e.to_tsquery()] {
            assert!(!rendered.contains("DROP TABLE"), "{rendered}");
            assert!(!rendered.contains("NEAR("), "{rendered}");
            assert!(!rendered.contains('^'), "{rendered}");
            assert!(!rendered.contains('{'), "{rendered}");
        }
    }

    #[test]
    fn plain_and_phrase_forms() {
        assert_eq!(all_words("fat  cats!").unwrap(), Expr::And(vec![word("fat"), word("cats")]));
        assert_eq!(
            phrase("fat cats").unwrap(),
            Expr::Phrase { tokens: vec!["fat".into(), "cats".into()], prefix: false }
        );
        assert!(all_words("!!").is_err());
        assert!(phrase("").is_err());
    }
}
