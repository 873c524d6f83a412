//! Small standard-library modules revision files call: `math` (rounding, checks, the usual
//! functions and constants), `time` (clocks and `sleep`) and `textwrap` (`dedent` and
//! `indent`, for SQL written inside the file), with CPython's results and error messages.

use super::interp::{exc, type_error, unsupported, Interp, R};
use super::value::{as_number, Num, Value};

/// `math.<attr>`: its constants, or whether the function is modelled.
pub fn math_attr(attr: &str) -> Option<MathAttr> {
    Some(match attr {
        "pi" => MathAttr::Constant(std::f64::consts::PI),
        "e" => MathAttr::Constant(std::f64::consts::E),
        "tau" => MathAttr::Constant(std::f64::consts::TAU),
        "inf" => MathAttr::Constant(f64::INFINITY),
        "nan" => MathAttr::Constant(f64::NAN),
        "floor" | "ceil" | "trunc" | "sqrt" | "isfinite" | "isnan" | "isinf" | "fabs" | "log"
        | "log10" | "log2" | "exp" | "pow" | "isclose" | "gcd" | "copysign" => MathAttr::Function,
        _ => return None,
    })
}

pub enum MathAttr {
    Constant(f64),
    Function,
}

/// `time.<attr>` is one of the modelled functions.
pub fn time_attr(attr: &str) -> bool {
    matches!(
        attr,
        "time" | "time_ns" | "monotonic" | "monotonic_ns" | "perf_counter" | "sleep"
    )
}

fn real(v: &Value) -> R<f64> {
    match as_number(v) {
        Some(n) => Ok(n.as_f64()),
        None => Err(type_error(format!(
            "must be real number, not {}",
            v.type_name()
        ))),
    }
}

fn domain_error() -> super::interp::Unwind {
    exc("ValueError", "math domain error")
}

/// A float result as CPython checks it: an infinite result from finite arguments overflowed.
fn ranged(result: f64, args_finite: bool) -> R<Value> {
    if result.is_infinite() && args_finite {
        return Err(exc("OverflowError", "math range error"));
    }
    if result.is_nan() && args_finite {
        return Err(domain_error());
    }
    Ok(Value::Float(result))
}

/// `floor`, `ceil`, `trunc`: an int stays itself, a float becomes the int it rounds to.
fn to_int(v: &Value, round: fn(f64) -> f64) -> R<Value> {
    match as_number(v) {
        Some(Num::Int(i)) => Ok(Value::Int(i)),
        Some(Num::Float(f)) => Ok(Value::Int(super::builtins::float_to_int(round(f))?)),
        None => Err(type_error(format!(
            "must be real number, not {}",
            v.type_name()
        ))),
    }
}

fn one<'a>(name: &str, args: &'a [Value], kwargs: &[(String, Value)]) -> R<&'a Value> {
    if let Some((k, _)) = kwargs.first() {
        return Err(type_error(format!(
            "math.{name}() takes no keyword arguments (got '{k}')"
        )));
    }
    match args {
        [v] => Ok(v),
        _ => Err(type_error(format!(
            "math.{name}() takes exactly one argument ({} given)",
            args.len()
        ))),
    }
}

fn two<'a>(name: &str, args: &'a [Value], kwargs: &[(String, Value)]) -> R<(&'a Value, &'a Value)> {
    if !kwargs.is_empty() {
        return Err(type_error(format!(
            "math.{name}() takes no keyword arguments"
        )));
    }
    match args {
        [a, b] => Ok((a, b)),
        _ => Err(type_error(format!(
            "{name} expected 2 arguments, got {}",
            args.len()
        ))),
    }
}

pub fn math_call(name: &str, args: Vec<Value>, kwargs: Vec<(String, Value)>) -> R<Value> {
    match name {
        "floor" => to_int(one(name, &args, &kwargs)?, f64::floor),
        "ceil" => to_int(one(name, &args, &kwargs)?, f64::ceil),
        "trunc" => to_int(one(name, &args, &kwargs)?, f64::trunc),
        "isfinite" => Ok(Value::Bool(real(one(name, &args, &kwargs)?)?.is_finite())),
        "isnan" => Ok(Value::Bool(real(one(name, &args, &kwargs)?)?.is_nan())),
        "isinf" => Ok(Value::Bool(real(one(name, &args, &kwargs)?)?.is_infinite())),
        "fabs" => Ok(Value::Float(real(one(name, &args, &kwargs)?)?.abs())),
        "sqrt" => {
            let x = real(one(name, &args, &kwargs)?)?;
            if x < 0.0 {
                return Err(domain_error());
            }
            Ok(Value::Float(x.sqrt()))
        }
        "exp" => {
            let x = real(one(name, &args, &kwargs)?)?;
            ranged(x.exp(), x.is_finite())
        }
        "log10" | "log2" => {
            let x = real(one(name, &args, &kwargs)?)?;
            if x <= 0.0 {
                return Err(domain_error());
            }
            Ok(Value::Float(if name == "log10" {
                x.log10()
            } else {
                x.log2()
            }))
        }
        "log" => {
            if !kwargs.is_empty() {
                return Err(type_error("math.log() takes no keyword arguments"));
            }
            let (x, base) = match args.as_slice() {
                [x] => (real(x)?, None),
                [x, b] => (real(x)?, Some(real(b)?)),
                _ => {
                    return Err(type_error(format!(
                        "log expected at least 1 argument, got {}",
                        args.len()
                    )))
                }
            };
            if x <= 0.0 || base.is_some_and(|b| b <= 0.0) {
                return Err(domain_error());
            }
            match base {
                None => Ok(Value::Float(x.ln())),
                Some(1.0) => Err(exc("ZeroDivisionError", "float division by zero")),
                Some(b) => Ok(Value::Float(x.ln() / b.ln())),
            }
        }
        "pow" => {
            let (a, b) = two(name, &args, &kwargs)?;
            let (x, y) = (real(a)?, real(b)?);
            if x == 0.0 && y < 0.0 {
                return Err(domain_error());
            }
            if x < 0.0 && x.is_finite() && y.is_finite() && y.fract() != 0.0 {
                return Err(domain_error());
            }
            ranged(x.powf(y), x.is_finite() && y.is_finite())
        }
        "copysign" => {
            let (a, b) = two(name, &args, &kwargs)?;
            Ok(Value::Float(real(a)?.copysign(real(b)?)))
        }
        "gcd" => {
            if let Some((k, _)) = kwargs.first() {
                return Err(type_error(format!(
                    "gcd() takes no keyword arguments (got '{k}')"
                )));
            }
            let mut g: u64 = 0;
            for a in &args {
                let mut b = super::builtins::int_arg(a)?.unsigned_abs();
                while b != 0 {
                    (g, b) = (b, g % b);
                }
            }
            i64::try_from(g)
                .map(Value::Int)
                .map_err(|_| unsupported("math.gcd() beyond 64 bits", "integers are 64-bit here"))
        }
        "isclose" => {
            let (a, b) = match args.as_slice() {
                [a, b] => (real(a)?, real(b)?),
                _ => {
                    return Err(type_error(format!(
                        "isclose() takes exactly 2 positional arguments ({} given)",
                        args.len()
                    )))
                }
            };
            let mut rel_tol = 1e-9;
            let mut abs_tol = 0.0;
            for (k, v) in &kwargs {
                match k.as_str() {
                    "rel_tol" => rel_tol = real(v)?,
                    "abs_tol" => abs_tol = real(v)?,
                    _ => {
                        return Err(type_error(format!(
                            "isclose() got an unexpected keyword argument '{k}'"
                        )))
                    }
                }
            }
            if rel_tol < 0.0 || abs_tol < 0.0 {
                return Err(exc("ValueError", "tolerances must be non-negative"));
            }
            if a == b {
                return Ok(Value::Bool(true));
            }
            if a.is_infinite() || b.is_infinite() {
                return Ok(Value::Bool(false));
            }
            let diff = (b - a).abs();
            Ok(Value::Bool(
                diff <= (rel_tol * b).abs() || diff <= (rel_tol * a).abs() || diff <= abs_tol,
            ))
        }
        _ => Err(unsupported(
            format!("`math.{name}`"),
            "not in ralembic's model of `math`",
        )),
    }
}

fn since_epoch() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// One clock for `monotonic` and `perf_counter`, started with the process: both are only
/// ever compared with themselves.
fn process_clock() -> std::time::Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

pub fn time_call(name: &str, args: Vec<Value>, kwargs: Vec<(String, Value)>) -> R<Value> {
    if let Some((k, _)) = kwargs.first() {
        return Err(type_error(format!(
            "time.{name}() takes no keyword arguments (got '{k}')"
        )));
    }
    let no_args = |args: &[Value]| -> R<()> {
        match args.len() {
            0 => Ok(()),
            n => Err(type_error(format!(
                "time.{name}() takes no arguments ({n} given)"
            ))),
        }
    };
    let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    match name {
        "time" => {
            no_args(&args)?;
            Ok(Value::Float(since_epoch().as_secs_f64()))
        }
        "time_ns" => {
            no_args(&args)?;
            Ok(Value::Int(nanos(since_epoch())))
        }
        "monotonic" | "perf_counter" => {
            no_args(&args)?;
            Ok(Value::Float(process_clock().as_secs_f64()))
        }
        "monotonic_ns" => {
            no_args(&args)?;
            Ok(Value::Int(nanos(process_clock())))
        }
        "sleep" => {
            let [secs] = args.as_slice() else {
                return Err(type_error(format!(
                    "time.sleep() takes exactly one argument ({} given)",
                    args.len()
                )));
            };
            let secs = match as_number(secs) {
                Some(n) => n.as_f64(),
                None => {
                    return Err(type_error(format!(
                        "'{}' object cannot be interpreted as an integer",
                        secs.type_name()
                    )))
                }
            };
            if secs.is_nan() {
                return Err(exc("ValueError", "Invalid value NaN (not a number)"));
            }
            if secs < 0.0 {
                return Err(exc("ValueError", "sleep length must be non-negative"));
            }
            let d = std::time::Duration::try_from_secs_f64(secs)
                .map_err(|_| exc("OverflowError", "sleep length is too large"))?;
            std::thread::sleep(d);
            Ok(Value::None)
        }
        _ => Err(unsupported(
            format!("`time.{name}`"),
            "not in ralembic's model of `time`",
        )),
    }
}

/// `textwrap.<attr>` is one of the modelled functions (`fill`, `wrap` and `shorten` re-flow
/// text with rules of their own and are refused at their names).
pub fn textwrap_attr(attr: &str) -> bool {
    matches!(attr, "dedent" | "indent")
}

fn text<'a>(func: &str, v: Option<&'a Value>) -> R<&'a str> {
    match v {
        Some(Value::Str(s)) => Ok(s),
        Some(other) => Err(type_error(format!(
            "{func}() argument must be str, not {}",
            other.type_name()
        ))),
        None => Err(type_error(format!("{func}() missing a required argument"))),
    }
}

pub fn textwrap_call(
    interp: &mut Interp<'_>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    let named = |k: &str| kwargs.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    match name {
        "dedent" => Ok(Value::str(dedent(text(
            "dedent",
            args.first().or(named("text")),
        )?))),
        "indent" => {
            let body = text("indent", args.first().or(named("text")))?;
            let prefix = text("indent", args.get(1).or(named("prefix")))?;
            let predicate = args
                .get(2)
                .or(named("predicate"))
                .filter(|p| !matches!(p, Value::None))
                .cloned();
            let mut out = String::with_capacity(body.len());
            for line in crate::alembic_compat::command::format::py_split_lines(body, true) {
                let wanted = match &predicate {
                    Some(p) => interp.call(p, vec![Value::str(line)], Vec::new())?.truthy(),
                    None => !line.trim().is_empty(),
                };
                if wanted {
                    out.push_str(prefix);
                }
                out.push_str(line);
            }
            Ok(Value::str(out))
        }
        _ => Err(unsupported(
            format!("`textwrap.{name}`"),
            "of `textwrap` only dedent() and indent() are modelled",
        )),
    }
}

/// Python's `textwrap.dedent`: lines of only blanks and tabs become empty, then the
/// leading whitespace every other line shares is removed. Lines end at `\n` only.
fn dedent(s: &str) -> String {
    let lines: Vec<&str> = s.split('\n').collect();
    let is_blank = |l: &str| !l.is_empty() && l.bytes().all(|b| b == b' ' || b == b'\t');
    let mut margin: Option<&str> = None;
    for l in &lines {
        if l.is_empty() || is_blank(l) {
            continue;
        }
        let indent = &l[..l.len() - l.trim_start_matches([' ', '\t']).len()];
        margin = Some(match margin {
            None => indent,
            Some(m) if indent.starts_with(m) => m,
            Some(m) if m.starts_with(indent) => indent,
            Some(m) => {
                let common = m
                    .bytes()
                    .zip(indent.bytes())
                    .take_while(|(a, b)| a == b)
                    .count();
                &m[..common]
            }
        });
    }
    let margin = margin.unwrap_or("");
    let mut out = String::with_capacity(s.len());
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if is_blank(l) {
            continue;
        }
        out.push_str(l.strip_prefix(margin).unwrap_or(l));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_keeps_ints_and_refuses_what_python_refuses() {
        assert!(matches!(
            math_call("floor", vec![Value::Float(-1.5)], vec![]),
            Ok(Value::Int(-2))
        ));
        assert!(matches!(
            math_call("ceil", vec![Value::Int(7)], vec![]),
            Ok(Value::Int(7))
        ));
        assert!(math_call("floor", vec![Value::Float(f64::NAN)], vec![]).is_err());
        assert!(math_call("trunc", vec![Value::Float(1e300)], vec![]).is_err());
        assert!(math_call("gcd", vec![Value::Int(i64::MIN), Value::Int(0)], vec![]).is_err());
    }

    #[test]
    fn clocks_move_forward() {
        let Ok(Value::Float(a)) = time_call("monotonic", vec![], vec![]) else {
            panic!("monotonic() is a float")
        };
        let Ok(Value::Float(b)) = time_call("perf_counter", vec![], vec![]) else {
            panic!("perf_counter() is a float")
        };
        assert!(b >= a);
        assert!(time_call("sleep", vec![Value::Float(-1.0)], vec![]).is_err());
    }

    #[test]
    fn dedent_keeps_what_python_keeps() {
        assert_eq!(dedent("    a\n      b\n    c\n"), "a\n  b\nc\n");
        assert_eq!(dedent("\n  x\n \t\n  y"), "\nx\n\ny");
        assert_eq!(dedent("\ta\n  b"), "\ta\n  b");
        assert_eq!(dedent("  a\r\n  b"), "a\r\nb");
    }
}
