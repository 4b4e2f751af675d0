//! `graph --format dot|mermaid`: the program's resources and their dependencies, with
//! components drawn as nested clusters.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::cli::Context;
use crate::graph::DesiredGraph;
use crate::model::stack::Stack;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Dot,
    Mermaid,
}

pub async fn run(ctx: &Context, define: fn(&mut Stack) -> crate::Result<()>, format: Format) -> anyhow::Result<u8> {
    let session = ctx.session(define).await?;
    print!(
        "{}",
        match format {
            Format::Dot => dot(&session.graph),
            Format::Mermaid => mermaid(&session.graph),
        }
    );
    Ok(0)
}

fn node_id(i: usize) -> String {
    format!("n{i}")
}

/// Resource indices grouped by component path.
fn by_component(g: &DesiredGraph) -> BTreeMap<String, Vec<usize>> {
    let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in g.resources.iter().enumerate() {
        m.entry(r.address.component_path().to_string()).or_default().push(i);
    }
    m
}

pub fn dot(g: &DesiredGraph) -> String {
    let mut out =
        String::from("digraph spar {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    let index: std::collections::HashMap<_, _> = g.resources.iter().enumerate().map(|(i, r)| (&r.address, i)).collect();
    for (ci, (comp, members)) in by_component(g).into_iter().enumerate() {
        let indent = if comp.is_empty() { "  " } else { "    " };
        if !comp.is_empty() {
            let _ = writeln!(out, "  subgraph cluster_{ci} {{\n    label=\"{comp}\";");
        }
        for i in members {
            let r = &g.resources[i];
            let _ = writeln!(
                out,
                "{indent}{} [label=\"{}\\n{}\"];",
                node_id(i),
                r.address.name(),
                r.kind
            );
        }
        if !comp.is_empty() {
            out.push_str("  }\n");
        }
    }
    for (i, r) in g.resources.iter().enumerate() {
        for d in &r.dependencies {
            let _ = writeln!(out, "  {} -> {};", node_id(index[d]), node_id(i));
        }
    }
    out.push_str("}\n");
    out
}

pub fn mermaid(g: &DesiredGraph) -> String {
    let mut out = String::from("flowchart LR\n");
    let index: std::collections::HashMap<_, _> = g.resources.iter().enumerate().map(|(i, r)| (&r.address, i)).collect();
    for (ci, (comp, members)) in by_component(g).into_iter().enumerate() {
        let indent = if comp.is_empty() { "  " } else { "    " };
        if !comp.is_empty() {
            let _ = writeln!(out, "  subgraph c{ci}[\"{comp}\"]");
        }
        for i in members {
            let r = &g.resources[i];
            let _ = writeln!(
                out,
                "{indent}{}[\"{}<br/><small>{}</small>\"]",
                node_id(i),
                r.address.name(),
                r.kind
            );
        }
        if !comp.is_empty() {
            out.push_str("  end\n");
        }
    }
    for (i, r) in g.resources.iter().enumerate() {
        for d in &r.dependencies {
            let _ = writeln!(out, "  {} --> {}", node_id(index[d]), node_id(i));
        }
    }
    out
}
