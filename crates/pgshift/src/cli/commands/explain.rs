use crate::cli::output::outln;
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A rule name (require-concurrent-index) or code (PGS101).
    pub rule: String,
}

pub fn run(args: Args, _ctx: &Context) -> Result<u8, Failure> {
    match pgshift_lint::find_rule(&args.rule) {
        Some(rule) => {
            outln!("{} {} ({})\n", rule.code, rule.name, rule.severity.name())?;
            outln!("{}", rule.doc.trim_end())?;
            Ok(exit::OK)
        }
        None => {
            let close: Vec<&str> = pgshift_lint::RULES
                .iter()
                .filter(|r| {
                    r.name.contains(&args.rule.to_lowercase())
                        || args.rule.to_lowercase().contains(r.name)
                })
                .map(|r| r.name)
                .take(5)
                .collect();
            let hint = if close.is_empty() {
                String::new()
            } else {
                format!(" Did you mean: {}?", close.join(", "))
            };
            Err(Failure::usage(format!(
                "no rule named `{}`.{hint} `pgshift rules` lists them all.",
                args.rule
            )))
        }
    }
}
