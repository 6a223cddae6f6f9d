//! CloudWatch Logs filter patterns (FilterLogEvents' `filterPattern`), parsed once and matched per
//! event: term patterns (`ERROR`, `"exact phrase"`, `?ERROR ?WARN`, `-DEBUG`), regular expressions
//! (`%5\d\d%`) and JSON patterns (`{ $.level = "ERROR" && $.latency > 100 }`, `*` wildcards in string
//! values, `IS NULL`, `NOT EXISTS`). Space-delimited patterns (`[ip, user, ...]`) are refused with a
//! clear error rather than matched loosely.

use serde_json::Value;

use super::common::{LogsError, LogsResult};

#[derive(Debug)]
pub enum Pattern {
    All,
    Terms {
        required: Vec<String>,
        any_of: Vec<String>,
        excluded: Vec<String>,
    },
    Regex(regex::Regex),
    Json(Expr),
}

#[derive(Debug)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare {
        selector: Vec<Step>,
        op: Op,
        value: Literal,
    },
    IsNull(Vec<Step>),
    NotExists(Vec<Step>),
}

#[derive(Debug, Clone)]
pub enum Step {
    Field(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug)]
pub enum Literal {
    Number(f64),
    /// A string; `*` matches any run of characters.
    Text(String),
    Bool(bool),
    Null,
}

fn invalid(why: &str) -> LogsError {
    LogsError::InvalidParameter(format!("Invalid filter pattern: {why}"))
}

/// Parse a filter pattern; an empty pattern matches every event.
pub fn parse(pattern: &str) -> LogsResult<Pattern> {
    let p = pattern.trim();
    if p.is_empty() {
        return Ok(Pattern::All);
    }
    if let Some(inner) = p.strip_prefix('{') {
        let inner = inner
            .strip_suffix('}')
            .ok_or_else(|| invalid("a JSON pattern must end with '}'"))?;
        let mut parser = Parser {
            chars: inner.chars().collect(),
            at: 0,
        };
        let expr = parser.or()?;
        parser.skip_ws();
        if parser.at != parser.chars.len() {
            return Err(invalid("unexpected text after the expression"));
        }
        return Ok(Pattern::Json(expr));
    }
    if p.starts_with('[') {
        return Err(invalid(
            "space-delimited patterns ([field, ...]) are not supported by Skiff",
        ));
    }
    if let Some(inner) = p.strip_prefix('%').and_then(|r| r.strip_suffix('%')) {
        let re = regex::Regex::new(inner).map_err(|e| invalid(&e.to_string()))?;
        return Ok(Pattern::Regex(re));
    }
    let (mut required, mut any_of, mut excluded) = (Vec::new(), Vec::new(), Vec::new());
    for term in terms(p)? {
        if let Some(t) = term.strip_prefix('?') {
            any_of.push(unquote(t));
        } else if let Some(t) = term.strip_prefix('-') {
            excluded.push(unquote(t));
        } else {
            required.push(unquote(&term));
        }
    }
    Ok(Pattern::Terms {
        required,
        any_of,
        excluded,
    })
}

/// Whitespace-separated terms; a double-quoted term keeps its spaces.
fn terms(p: &str) -> LogsResult<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in p.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(invalid("unterminated quote"));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn unquote(t: &str) -> String {
    t.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t)
        .to_string()
}

impl Pattern {
    pub fn matches(&self, message: &str) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Terms {
                required,
                any_of,
                excluded,
            } => {
                required.iter().all(|t| message.contains(t.as_str()))
                    && (any_of.is_empty() || any_of.iter().any(|t| message.contains(t.as_str())))
                    && !excluded.iter().any(|t| message.contains(t.as_str()))
            }
            Pattern::Regex(re) => re.is_match(message),
            Pattern::Json(expr) => serde_json::from_str::<Value>(message)
                .ok()
                .is_some_and(|doc| expr.eval(&doc)),
        }
    }
}

fn select<'a>(doc: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, step| match step {
        Step::Field(f) => v.get(f),
        Step::Index(i) => v.get(*i),
    })
}

/// `*` matches any run of characters (the only wildcard JSON patterns have).
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl Expr {
    fn eval(&self, doc: &Value) -> bool {
        match self {
            Expr::And(a, b) => a.eval(doc) && b.eval(doc),
            Expr::Or(a, b) => a.eval(doc) || b.eval(doc),
            Expr::IsNull(path) => matches!(select(doc, path), Some(Value::Null)),
            Expr::NotExists(path) => select(doc, path).is_none(),
            Expr::Compare {
                selector,
                op,
                value,
            } => {
                let Some(found) = select(doc, selector) else {
                    return false;
                };
                match (value, found) {
                    (Literal::Number(want), got) => {
                        let got = match got {
                            Value::Number(n) => n.as_f64(),
                            Value::String(s) => s.parse().ok(),
                            _ => None,
                        };
                        let Some(got) = got else { return false };
                        match op {
                            Op::Eq => got == *want,
                            Op::Ne => got != *want,
                            Op::Lt => got < *want,
                            Op::Le => got <= *want,
                            Op::Gt => got > *want,
                            Op::Ge => got >= *want,
                        }
                    }
                    (Literal::Text(want), got) => {
                        let got = match got {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            _ => return false,
                        };
                        let same = wildcard(want, &got);
                        if *op == Op::Ne { !same } else { same }
                    }
                    (Literal::Bool(want), Value::Bool(got)) => (got == want) == (*op == Op::Eq),
                    (Literal::Null, got) => got.is_null() == (*op == Op::Eq),
                    _ => false,
                }
            }
        }
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn skip_ws(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        let n = s.chars().count();
        if self.chars.len() >= self.at + n
            && self.chars[self.at..self.at + n]
                .iter()
                .copied()
                .eq(s.chars())
        {
            self.at += n;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> LogsResult<Expr> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> LogsResult<Expr> {
        let mut left = self.primary()?;
        while self.eat("&&") {
            left = Expr::And(Box::new(left), Box::new(self.primary()?));
        }
        Ok(left)
    }

    fn primary(&mut self) -> LogsResult<Expr> {
        if self.eat("(") {
            let e = self.or()?;
            if !self.eat(")") {
                return Err(invalid("missing ')'"));
            }
            return Ok(e);
        }
        let selector = self.selector()?;
        if self.eat("IS NULL") {
            return Ok(Expr::IsNull(selector));
        }
        if self.eat("NOT EXISTS") {
            return Ok(Expr::NotExists(selector));
        }
        let op = if self.eat("!=") {
            Op::Ne
        } else if self.eat("<=") {
            Op::Le
        } else if self.eat(">=") {
            Op::Ge
        } else if self.eat("=") {
            Op::Eq
        } else if self.eat("<") {
            Op::Lt
        } else if self.eat(">") {
            Op::Gt
        } else {
            return Err(invalid("expected a comparison operator"));
        };
        let value = self.literal()?;
        if matches!(value, Literal::Text(_) | Literal::Bool(_) | Literal::Null)
            && !matches!(op, Op::Eq | Op::Ne)
        {
            return Err(invalid("only numbers compare with <, <=, > and >="));
        }
        Ok(Expr::Compare {
            selector,
            op,
            value,
        })
    }

    fn selector(&mut self) -> LogsResult<Vec<Step>> {
        if !self.eat("$") {
            return Err(invalid("a JSON selector starts with '$'"));
        }
        let mut steps = Vec::new();
        loop {
            match self.chars.get(self.at) {
                Some('.') => {
                    self.at += 1;
                    let start = self.at;
                    while self
                        .chars
                        .get(self.at)
                        .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '@' | ':'))
                    {
                        self.at += 1;
                    }
                    if start == self.at {
                        return Err(invalid("empty field name in selector"));
                    }
                    steps.push(Step::Field(self.chars[start..self.at].iter().collect()));
                }
                Some('[') => {
                    self.at += 1;
                    let start = self.at;
                    while self.chars.get(self.at).is_some_and(char::is_ascii_digit) {
                        self.at += 1;
                    }
                    let index: String = self.chars[start..self.at].iter().collect();
                    if self.chars.get(self.at) != Some(&']') {
                        return Err(invalid("missing ']' in selector"));
                    }
                    self.at += 1;
                    steps.push(Step::Index(
                        index.parse().map_err(|_| invalid("bad array index"))?,
                    ));
                }
                _ => break,
            }
        }
        if steps.is_empty() {
            return Err(invalid("a JSON selector names a field ($.field)"));
        }
        Ok(steps)
    }

    fn literal(&mut self) -> LogsResult<Literal> {
        self.skip_ws();
        if self.chars.get(self.at) == Some(&'"') {
            self.at += 1;
            let start = self.at;
            while self.chars.get(self.at).is_some_and(|c| *c != '"') {
                self.at += 1;
            }
            if self.at >= self.chars.len() {
                return Err(invalid("unterminated string"));
            }
            let text = self.chars[start..self.at].iter().collect();
            self.at += 1;
            return Ok(Literal::Text(text));
        }
        let start = self.at;
        while self
            .chars
            .get(self.at)
            .is_some_and(|c| !c.is_whitespace() && !matches!(c, ')' | '&' | '|'))
        {
            self.at += 1;
        }
        let word: String = self.chars[start..self.at].iter().collect();
        if word.is_empty() {
            return Err(invalid("expected a value"));
        }
        Ok(match word.as_str() {
            "true" => Literal::Bool(true),
            "false" => Literal::Bool(false),
            "NULL" | "null" => Literal::Null,
            w => match w.parse::<f64>() {
                Ok(n) => Literal::Number(n),
                Err(_) => Literal::Text(w.to_string()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, msg: &str) -> bool {
        parse(p).unwrap().matches(msg)
    }

    #[test]
    fn terms_and_or_and_exclusion() {
        assert!(m("", "anything"));
        assert!(m("ERROR", "level ERROR here"));
        assert!(!m("ERROR", "level error here"), "terms are case-sensitive");
        assert!(m("ERROR db", "ERROR in db"));
        assert!(!m("ERROR db", "ERROR in cache"));
        assert!(m("?ERROR ?WARN", "a WARN"));
        assert!(!m("?ERROR ?WARN", "an INFO"));
        assert!(!m("ERROR -timeout", "ERROR timeout"));
        assert!(m("\"connection refused\"", "dial: connection refused"));
        assert!(!m("\"connection refused\"", "connection was refused"));
    }

    #[test]
    fn regex_patterns() {
        assert!(m("%5\\d\\d%", "status 503"));
        assert!(!m("%5\\d\\d%", "status 404"));
        assert!(parse("%(%").is_err());
    }

    #[test]
    fn json_patterns() {
        let ev =
            r#"{"level":"ERROR","latency":120,"user":{"id":"u-1"},"tags":["a","b"],"gone":null}"#;
        assert!(m(r#"{ $.level = "ERROR" }"#, ev));
        assert!(m(r#"{ $.level = "ERR*" }"#, ev));
        assert!(m(r#"{ $.level = "*RR*R" }"#, ev));
        assert!(!m(r#"{ $.level = "E?ROR" }"#, ev), "only * is a wildcard");
        assert!(!m(r#"{ $.level != "ERROR" }"#, ev));
        assert!(m("{ $.latency > 100 && $.user.id = u-1 }", ev));
        assert!(!m("{ $.latency > 200 || $.tags[1] = a }", ev));
        assert!(m("{ ($.latency > 200) || ($.tags[1] = b) }", ev));
        assert!(m("{ $.gone IS NULL }", ev));
        assert!(m("{ $.missing NOT EXISTS }", ev));
        assert!(!m(r#"{ $.level = "ERROR" }"#, "not json"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "{ $.a = 1",
            "{ a = 1 }",
            "{ $.a ~ 1 }",
            "{ $.a > \"x\" }",
            "[ip, user]",
            "\"open",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
