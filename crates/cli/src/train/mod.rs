//! `warmstart train ...`: a dual image encoder, the two-tower model and GraphSAGE with early
//! stopping, and any model by name as a published artifact.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use rayon::prelude::*;
use warmstart_embed::dual::{prepare_image, TrainEvent};
use warmstart_embed::{fetch, ClipShape, DualConfig, DualTrainer, PairSet, TowerKind, TrainOptions};
use warmstart_store::Store;
use warmstart_viz::{LineChart, Series};

use crate::embed::{embed_store, EmbedArgs};
use crate::{progress, Cli};

mod image_encoder;
mod model;
mod neural;

use image_encoder::image_encoder;
pub use image_encoder::ImageEncoderArgs;
use model::model;
pub use model::TrainModelArgs;
use neural::{graphsage, two_tower};
pub use neural::{GraphSageArgs, TwoTowerArgs};

/// `warmstart train ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum TrainCommand {
    /// Train a CLIP-style dual encoder (image tower + text head, InfoNCE) on a catalog's
    /// image–title pairs; the result is a model name for `warmstart embed`.
    ImageEncoder(ImageEncoderArgs),
    /// Train the two-tower model on every interaction of a dataset (early stopping on
    /// held-out cross-site users) and save it beside the store; `warmstart eval --models
    /// two-tower` trains its own copy per protocol.
    TwoTower(TwoTowerArgs),
    /// Train GraphSAGE on the cross-shop product graph of a dataset (early stopping on
    /// held-out cross-site users) and save it beside the store; `warmstart eval --models
    /// graphsage` trains its own copy per protocol.
    Graphsage(GraphSageArgs),
    /// Train any model by name (`warmstart train itemknn`, `warmstart train model two-tower`),
    /// measure the fit on held-out cross-site users and publish a versioned artifact that
    /// `warmstart serve` loads.
    Model(TrainModelArgs),
    /// `warmstart train NAME …` for any other model name: as `train model NAME …`.
    #[command(external_subcommand)]
    Other(Vec<String>),
}

/// `warmstart train`.
pub fn run(cli: &Cli, c: &TrainCommand) -> anyhow::Result<()> {
    match c {
        TrainCommand::ImageEncoder(a) => image_encoder(cli, a),
        TrainCommand::TwoTower(a) => two_tower(cli, a),
        TrainCommand::Graphsage(a) => graphsage(cli, a),
        TrainCommand::Model(a) => model(cli, a),
        TrainCommand::Other(args) => {
            use clap::Parser;
            let a = TrainModelArgs::try_parse_from(
                std::iter::once("warmstart train".to_string()).chain(args.iter().cloned()),
            )?;
            model(cli, &a)
        }
    }
}
