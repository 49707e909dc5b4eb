use crate::cli::output::outln;
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: human or json.
    #[arg(long, default_value = "human")]
    pub format: String,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    let rules = pgshift_lint::RULES;
    match args.format.as_str() {
        "json" => outln!("{}", pgshift_lint::render::render_rules_json(rules))?,
        "human" => {
            let style = ctx.out_style;
            for r in rules {
                let sev = format!("{:<7}", r.severity.name());
                let sev = match r.severity {
                    pgshift_lint::Severity::Error => style.red(&sev),
                    pgshift_lint::Severity::Warning => style.yellow(&sev),
                    _ => style.dim(&sev),
                };
                let opt = if r.opt_in { " (opt-in)" } else { "" };
                outln!(
                    "{}  {:<38} {sev}  {}{opt}",
                    style.bold(r.code),
                    r.name,
                    r.summary
                )?;
            }
            outln!(
                "\n{} rules. `pgshift explain RULE` prints one rule's documentation.",
                rules.len()
            )?;
        }
        other => {
            return Err(Failure::usage(format!(
                "unknown format `{other}` for `rules`; use human or json"
            )))
        }
    }
    Ok(exit::OK)
}
