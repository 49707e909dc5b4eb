use crate::cli::output::outln;
use crate::cli::{exit, Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What the migration does, e.g. add_users_email_index.
    pub name: String,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Failure> {
    let dir = ctx.migrations_dir();
    std::fs::create_dir_all(&dir).map_err(|e| {
        Failure::usage(format!(
            "{}: cannot create the directory: {e}",
            dir.display()
        ))
    })?;
    let (up, down) = pgshift_source::new_migration(&dir, &args.name, std::time::SystemTime::now())?;
    outln!("{}", up.display())?;
    outln!("{}", down.display())?;
    Ok(exit::OK)
}
