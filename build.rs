//! Compiles the Slint UI (`ui/app.slint`) with its bundled translations, and embeds the CJK
//! font it renders with.
//!
//! Debian ships WenQuanYi Micro Hei as a TrueType collection (.ttc); Slint imports single-face
//! files reliably, so the first face is cut out of the collection into `OUT_DIR` here.

use std::path::{Path, PathBuf};

const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes")) as usize
}

fn be16(b: &[u8], at: usize) -> usize {
    u16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes")) as usize
}

/// The first font of a TrueType collection as a standalone .ttf (tables copied, offsets
/// rewritten); a plain .ttf is returned as it is.
fn first_face(data: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < 16 || &data[..4] != b"ttcf" {
        return Ok(data.to_vec());
    }
    let dir = be32(data, 12);
    let n = be16(data, dir + 4);
    let head_len = 12 + 16 * n;
    if data.len() < dir + head_len {
        return Err("truncated table directory".into());
    }
    let mut out = data[dir..dir + 12].to_vec();
    let mut body = Vec::new();
    for i in 0..n {
        let rec = dir + 12 + 16 * i;
        let (off, len) = (be32(data, rec + 8), be32(data, rec + 12));
        let table = data
            .get(off..off + len)
            .ok_or_else(|| format!("table {i} lies outside the file"))?;
        out.extend_from_slice(&data[rec..rec + 8]); // tag and checksum
        out.extend_from_slice(&((head_len + body.len()) as u32).to_be_bytes());
        out.extend_from_slice(&(len as u32).to_be_bytes());
        body.extend_from_slice(table);
        while body.len() % 4 != 0 {
            body.push(0);
        }
    }
    out.extend_from_slice(&body);
    Ok(out)
}

fn main() {
    let font = std::env::var("CLOCKFACE_CJK_FONT").unwrap_or_else(|_| DEFAULT_FONT.into());
    println!("cargo:rerun-if-env-changed=CLOCKFACE_CJK_FONT");
    println!("cargo:rerun-if-changed={font}");
    let data = std::fs::read(&font).unwrap_or_else(|e| {
        panic!(
            "{font}: {e}. The UI embeds a CJK font: apt-get install fonts-wqy-microhei \
             (or point CLOCKFACE_CJK_FONT at a .ttf/.ttc with CJK glyphs)"
        )
    });
    let ttf = first_face(&data).unwrap_or_else(|e| panic!("{font}: {e}"));
    let fonts = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("fonts");
    std::fs::create_dir_all(&fonts).expect("create OUT_DIR/fonts");
    let dst = fonts.join("WenQuanYiMicroHei.ttf");
    if std::fs::read(&dst).ok().as_deref() != Some(ttf.as_slice()) {
        std::fs::write(&dst, &ttf).expect("write the font");
    }
    let config = slint_build::CompilerConfiguration::new()
        .with_include_paths(vec![fonts])
        .with_bundled_translations(Path::new("translations"))
        .embed_resources(slint_build::EmbedResourcesKind::EmbedFiles)
        .with_style("fluent-dark".into())
        // Element ids stay in the generated code, so tests find a button's position and tap it
        // with real pointer events (i-slint-backend-testing's ElementHandle).
        .with_debug_info(true);
    slint_build::compile_with_config("ui/app.slint", config).expect("ui/app.slint compiles");
}
