//! The Rust code generated from the test schemas (see build.rs), one module per
//! schema file, as a user crate would include it.
#![cfg(not(shoal_no_gen))]

/// Where the tests' objects live: `$SHOAL_TEST_ROOT`, else a directory under the
/// system's temporary directory.
pub fn test_root() -> String {
    std::env::var("SHOAL_TEST_ROOT").unwrap_or_else(|_| {
        let dir = std::env::temp_dir().join("shoal-rust-tests");
        std::fs::create_dir_all(&dir).unwrap();
        dir.to_string_lossy().into_owned()
    })
}

pub mod orders_shoal {
    include!(concat!(env!("OUT_DIR"), "/orders_shoal.rs"));
}
pub mod common_shoal {
    include!(concat!(env!("OUT_DIR"), "/common_shoal.rs"));
}
pub mod features_shoal {
    include!(concat!(env!("OUT_DIR"), "/features_shoal.rs"));
}
pub mod features2_shoal {
    include!(concat!(env!("OUT_DIR"), "/features2_shoal.rs"));
}
pub mod orders_v2_shoal {
    include!(concat!(env!("OUT_DIR"), "/orders_v2_shoal.rs"));
}
pub mod tally_shoal {
    include!(concat!(env!("OUT_DIR"), "/tally_shoal.rs"));
}
pub mod encoded_note_shoal {
    include!(concat!(env!("OUT_DIR"), "/encoded_note_shoal.rs"));
}
pub mod encoded2_shoal {
    include!(concat!(env!("OUT_DIR"), "/encoded2_shoal.rs"));
}
pub mod svct_shoal {
    include!(concat!(env!("OUT_DIR"), "/svct_shoal.rs"));
}
