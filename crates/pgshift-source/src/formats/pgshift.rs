//! pgshift's own layout, the one `pgshift new` writes: `<YYYYMMDDHHMMSS>_<name>.up.sql` plus an
//! optional `<YYYYMMDDHHMMSS>_<name>.down.sql` (forward-only without it). A `<version>_<name>.sql`
//! without `.up` is read as a forward-only migration too, so that a hand-made file is never
//! silently ignored. No-transaction marker: `-- pgshift:no-transaction` (honoured everywhere).

use std::path::Path;

use super::{load_up_down, UpDownLayout, UpDownVersion};
use crate::format::{FormatDescriptor, NoTransactionMarker, TransactionModel};
use crate::{Format, MigrationSet, SourceError};

pub(crate) static DESCRIPTOR: FormatDescriptor = FormatDescriptor {
    name: "pgshift",
    aliases: &[],
    title: "pgshift",
    transaction: TransactionModel::PgshiftRunner,
    no_transaction: Some(NoTransactionMarker {
        text: "-- pgshift:no-transaction",
        help: "`-- pgshift:no-transaction`",
        example: &[(
            "20240101000000_index.up.sql",
            "-- pgshift:no-transaction\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n",
        )],
    }),
    // pgshift's own history, `pgshift.migrations`, is the runner's: nothing to adopt.
    history: &[],
    content_marker: None,
    load,
};

static LAYOUT: UpDownLayout = UpDownLayout {
    format: Format::Pgshift,
    expected: "<YYYYMMDDHHMMSS>_<name>.up.sql or .down.sql",
    version: UpDownVersion::Digits,
    // `-- pgshift:no-transaction` is read in every format, by `formats::section`.
    no_transaction: |_| false,
};

fn load(dir: &Path) -> Result<MigrationSet, SourceError> {
    load_up_down(dir, &LAYOUT)
}
