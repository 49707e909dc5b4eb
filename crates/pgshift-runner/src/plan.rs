//! `pgshift plan`.
