//! The PromQL subset the pipeline's rules use, parsed into [`Expr`]: numbers, instant and range
//! selectors with `=` / `!=` matchers, `rate`, `increase`, `histogram_quantile`, `time`, the
//! aggregations `sum`, `max`, `min`, `avg`, `count` with `by` / `without`, arithmetic,
//! comparisons (with `bool`), `and`, `or`, `unless`, `on (...)` / `ignoring (...)` and unary
//! minus, with Prometheus's precedence. Anything else is a [`ParseError`] naming it, never a
//! silently different meaning.

use super::lex::{lex, Tok};

/// A label matcher of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Value to compare with.
    pub value: String,
    /// `!=` instead of `=`.
    pub negated: bool,
}

/// Functions the evaluator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// Per-second increase over a range, extrapolated like Prometheus.
    Rate,
    /// Increase over a range, extrapolated like Prometheus.
    Increase,
    /// A quantile from `le` buckets.
    HistogramQuantile,
    /// The evaluation time in seconds.
    Time,
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    /// Sum.
    Sum,
    /// Largest.
    Max,
    /// Smallest.
    Min,
    /// Mean.
    Avg,
    /// Number of samples.
    Count,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinOp {
    /// A comparison (filters unless `bool`).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le
        )
    }

    /// A set operator (`and`, `or`, `unless`).
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div => 5,
        }
    }
}

/// How the two sides of a vector-vector operation are matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matching {
    /// `on (...)` (true) or `ignoring (...)` (false).
    pub on: bool,
    /// The labels named.
    pub labels: Vec<String>,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number literal.
    Number(f64),
    /// An instant vector selector.
    Selector {
        /// Metric name (`None` when only matchers are given).
        name: Option<String>,
        /// Label matchers.
        matchers: Vec<Matcher>,
    },
    /// A range vector selector: `selector[range]`.
    Range {
        /// The instant selector.
        selector: Box<Expr>,
        /// Range in milliseconds.
        range_ms: i64,
    },
    /// A function call.
    Call {
        /// Which.
        func: Func,
        /// Its arguments.
        args: Vec<Expr>,
    },
    /// An aggregation.
    Aggregate {
        /// Which.
        op: AggOp,
        /// `by (...)` labels, or `without (...)` labels when `without`.
        grouping: Vec<String>,
        /// `without` instead of `by`.
        without: bool,
        /// What is aggregated.
        expr: Box<Expr>,
    },
    /// A binary operation.
    Binary {
        /// Which.
        op: BinOp,
        /// Left side.
        lhs: Box<Expr>,
        /// Right side.
        rhs: Box<Expr>,
        /// `bool` modifier of a comparison.
        return_bool: bool,
        /// `on` / `ignoring`.
        matching: Option<Matching>,
    },
    /// Unary minus.
    Neg(Box<Expr>),
}

/// Why an expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PromQL {expr:?} at byte {at}: {message}")]
pub struct ParseError {
    /// The expression.
    pub expr: String,
    /// Where.
    pub at: usize,
    /// What went wrong.
    pub message: String,
}

/// Parses one expression.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let toks = lex(text)?;
    let mut p = Parser { text, toks, i: 0 };
    let e = p.expr(0)?;
    match p.peek() {
        Tok::End => Ok(e),
        t => Err(p.error(format!("unexpected {t:?} after the expression"))),
    }
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(usize, Tok)>,
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].1
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn error(&self, message: String) -> ParseError {
        ParseError {
            expr: self.text.to_owned(),
            at: self.toks[self.i.min(self.toks.len() - 1)].0,
            message,
        }
    }

    fn expect(&mut self, want: &Tok) -> Result<(), ParseError> {
        let got = self.next();
        if &got == want {
            Ok(())
        } else {
            self.i -= 1;
            Err(self.error(format!("expected {want:?}, found {got:?}")))
        }
    }

    fn binop(&self) -> Option<BinOp> {
        Some(match self.peek() {
            Tok::Op("+") => BinOp::Add,
            Tok::Op("-") => BinOp::Sub,
            Tok::Op("*") => BinOp::Mul,
            Tok::Op("/") => BinOp::Div,
            Tok::Op("==") => BinOp::Eq,
            Tok::Op("!=") => BinOp::Ne,
            Tok::Op(">") => BinOp::Gt,
            Tok::Op("<") => BinOp::Lt,
            Tok::Op(">=") => BinOp::Ge,
            Tok::Op("<=") => BinOp::Le,
            Tok::Ident(w) if w == "and" => BinOp::And,
            Tok::Ident(w) if w == "or" => BinOp::Or,
            Tok::Ident(w) if w == "unless" => BinOp::Unless,
            _ => return None,
        })
    }

    /// Precedence climbing; every operator here is left-associative.
    fn expr(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        while let Some(op) = self.binop().filter(|o| o.precedence() > min_prec) {
            self.next();
            let mut return_bool = false;
            if matches!(self.peek(), Tok::Ident(w) if w == "bool") {
                if !op.is_comparison() {
                    return Err(self.error("bool applies to comparisons only".into()));
                }
                self.next();
                return_bool = true;
            }
            let matching = self.matching()?;
            let rhs = self.expr(op.precedence())?;
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                return_bool,
                matching,
            };
        }
        Ok(lhs)
    }

    fn matching(&mut self) -> Result<Option<Matching>, ParseError> {
        let on = match self.peek() {
            Tok::Ident(w) if w == "on" => true,
            Tok::Ident(w) if w == "ignoring" => false,
            _ => return Ok(None),
        };
        self.next();
        let labels = self.label_list()?;
        if matches!(self.peek(), Tok::Ident(w) if w == "group_left" || w == "group_right") {
            return Err(self.error("group_left / group_right are not supported".into()));
        }
        Ok(Some(Matching { on, labels }))
    }

    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(&Tok::LParen)?;
        let mut out = Vec::new();
        loop {
            match self.next() {
                Tok::RParen => return Ok(out),
                Tok::Ident(l) => {
                    out.push(l);
                    match self.next() {
                        Tok::Comma => {}
                        Tok::RParen => return Ok(out),
                        t => {
                            return Err(
                                self.error(format!("expected , or ) in labels, found {t:?}"))
                            )
                        }
                    }
                }
                t => return Err(self.error(format!("expected a label name, found {t:?}"))),
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Tok::Op("-") => {
                self.next();
                // Unary minus binds tighter than any binary operator here.
                let e = self.postfix()?;
                Ok(match e {
                    Expr::Number(n) => Expr::Number(-n),
                    e => Expr::Neg(Box::new(e)),
                })
            }
            Tok::Op("+") => {
                self.next();
                self.postfix()
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let e = self.primary()?;
        if *self.peek() == Tok::LBracket {
            if !matches!(e, Expr::Selector { .. }) {
                return Err(self.error("a range needs a plain selector (no subqueries)".into()));
            }
            self.next();
            let range = self.next();
            let Tok::Dur(range_ms) = range else {
                return Err(self.error(format!("expected a duration, found {range:?}")));
            };
            self.expect(&Tok::RBracket)?;
            return Ok(Expr::Range {
                selector: Box::new(e),
                range_ms,
            });
        }
        if matches!(self.peek(), Tok::Ident(w) if w == "offset") {
            return Err(self.error("offset is not supported".into()));
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.next() {
            Tok::Num(n) => Ok(Expr::Number(n)),
            Tok::LParen => {
                let e = self.expr(0)?;
                self.expect(&Tok::RParen)?;
                Ok(e)
            }
            Tok::LBrace => {
                self.i -= 1;
                let matchers = self.matchers()?;
                Ok(Expr::Selector {
                    name: None,
                    matchers,
                })
            }
            Tok::Ident(name) => self.after_ident(name),
            t => Err(self.error(format!("unexpected {t:?}"))),
        }
    }

    fn after_ident(&mut self, name: String) -> Result<Expr, ParseError> {
        let agg = match name.as_str() {
            "sum" => Some(AggOp::Sum),
            "max" => Some(AggOp::Max),
            "min" => Some(AggOp::Min),
            "avg" => Some(AggOp::Avg),
            "count" => Some(AggOp::Count),
            _ => None,
        };
        if let Some(op) = agg {
            return self.aggregate(op);
        }
        if *self.peek() == Tok::LParen {
            let func = match name.as_str() {
                "rate" => Func::Rate,
                "increase" => Func::Increase,
                "histogram_quantile" => Func::HistogramQuantile,
                "time" => Func::Time,
                other => return Err(self.error(format!("function {other}() is not supported"))),
            };
            self.next();
            let mut args = Vec::new();
            if *self.peek() != Tok::RParen {
                loop {
                    args.push(self.expr(0)?);
                    match self.next() {
                        Tok::Comma => {}
                        Tok::RParen => break,
                        t => return Err(self.error(format!("expected , or ), found {t:?}"))),
                    }
                }
            } else {
                self.next();
            }
            return Ok(Expr::Call { func, args });
        }
        let matchers = if *self.peek() == Tok::LBrace {
            self.matchers()?
        } else {
            Vec::new()
        };
        Ok(Expr::Selector {
            name: Some(name),
            matchers,
        })
    }

    fn aggregate(&mut self, op: AggOp) -> Result<Expr, ParseError> {
        let mut grouping = None;
        let modifier = |p: &Self| match p.peek() {
            Tok::Ident(w) if w == "by" => Some(false),
            Tok::Ident(w) if w == "without" => Some(true),
            _ => None,
        };
        if let Some(without) = modifier(self) {
            self.next();
            grouping = Some((without, self.label_list()?));
        }
        self.expect(&Tok::LParen)?;
        let expr = self.expr(0)?;
        if *self.peek() == Tok::Comma {
            return Err(self.error("aggregation parameters are not supported".into()));
        }
        self.expect(&Tok::RParen)?;
        if grouping.is_none() {
            if let Some(without) = modifier(self) {
                self.next();
                grouping = Some((without, self.label_list()?));
            }
        }
        let (without, grouping) = grouping.unwrap_or((false, Vec::new()));
        Ok(Expr::Aggregate {
            op,
            grouping,
            without,
            expr: Box::new(expr),
        })
    }

    fn matchers(&mut self) -> Result<Vec<Matcher>, ParseError> {
        self.expect(&Tok::LBrace)?;
        let mut out = Vec::new();
        loop {
            let name = match self.next() {
                Tok::RBrace => return Ok(out),
                Tok::Ident(n) => n,
                t => return Err(self.error(format!("expected a label name, found {t:?}"))),
            };
            let negated = match self.next() {
                Tok::Op("=") => false,
                Tok::Op("!=") => true,
                Tok::Op(o @ ("=~" | "!~")) => {
                    return Err(self.error(format!("regex matchers ({o}) are not supported")))
                }
                t => return Err(self.error(format!("expected = or !=, found {t:?}"))),
            };
            let Tok::Str(value) = self.next() else {
                return Err(self.error("expected a quoted label value".into()));
            };
            out.push(Matcher {
                name,
                value,
                negated,
            });
            match self.next() {
                Tok::Comma => {}
                Tok::RBrace => return Ok(out),
                t => return Err(self.error(format!("expected , or }} in matchers, found {t:?}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves precedence (comparison below arithmetic, `and` below comparison), grouping both
    /// before and after an aggregation's body, ranges, and refusal of what is not supported.
    #[test]
    fn parses_the_rules_subset() {
        let e =
            parse("sum by (kind) (increase(x{a=\"1\"}[15s]) and on (node) (time() - y > 10)) > 5")
                .expect("parses");
        let Expr::Binary { op, lhs, .. } = e else {
            panic!("not a comparison")
        };
        assert_eq!(op, BinOp::Gt);
        let Expr::Aggregate { grouping, expr, .. } = *lhs else {
            panic!("not an aggregation")
        };
        assert_eq!(grouping, vec!["kind".to_owned()]);
        let Expr::Binary { op, matching, .. } = *expr else {
            panic!("not and")
        };
        assert_eq!(op, BinOp::And);
        assert_eq!(
            matching,
            Some(Matching {
                on: true,
                labels: vec!["node".into()]
            })
        );
        let e = parse("max(a) by (x)").expect("trailing by");
        assert!(matches!(e, Expr::Aggregate { grouping, .. } if grouping == ["x"]));
        let e = parse("1 + 2 * 3 > 6").expect("arith");
        assert!(matches!(e, Expr::Binary { op: BinOp::Gt, .. }));
        let e = parse("rate(a[1m30s])").expect("range");
        assert!(matches!(
            e,
            Expr::Call { func: Func::Rate, ref args } if matches!(args[0], Expr::Range { range_ms: 90_000, .. })
        ));
        for bad in [
            "a{b=~\"x\"}",
            "irate(a[1m])",
            "a offset 1m",
            "sum(a) by",
            "a +",
            "topk(3, a)",
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }
}
