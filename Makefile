# roadsight: `make demo` runs the main job, `make test` runs the tests.
# A GPU user overrides the torch wheel:  make test TORCH_SPEC='torch==2.13.0 --index-url ...'
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-installs only when the project's dependency list changed.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e '.[dev,sweep]'
	touch $(STAMP)

install: $(STAMP)

# The main job: a short perception-driven training run (bev camera -> shipped detector -> tracker
# -> object list -> PPO), then `roadsight eval` of it and of the IDM driver on the same seeds.
DEMO ?= outputs/demo
demo: $(STAMP)
	rm -rf $(DEMO)
	$(BIN)/roadsight train env=urban_crossing camera=bev observation=objects agent=ppo \
	    total_timesteps=512 n_envs=2 agent.n_steps=128 eval_freq=0 checkpoint_freq=0 \
	    eval_episodes=1 seed=0 hydra.run.dir=$(DEMO)/train
	$(BIN)/roadsight eval run=$(DEMO)/train episodes=3 videos=3 hydra.run.dir=$(DEMO)/eval_policy
	$(BIN)/roadsight eval driver=idm env=urban_crossing camera=bev episodes=3 videos=3 \
	    hydra.run.dir=$(DEMO)/eval_idm

# one worker per core (pytest-xdist); a test file's tests stay on one worker, with its fixtures
TEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15 -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/roadsight bench

clean:
	rm -rf outputs multirun .pytest_cache

# ---- Datasets and the shipped detector checkpoints (documented in README "Detector") ----
# Seeds never overlap: train 0.., val 1000.., test 2000... Each split mixes the urban street and the
# highway with hazards. `make datasets-bev` then `make models/detector_bev.pt` reproduce the shipped
# checkpoint (same for front).
DATA ?= data
# $(1) camera, $(2) split part, $(3) first urban seed, $(4) urban episodes, $(5) first highway
# seed, $(6) highway episodes. An episode's frames depend only on its seed, so two parts with
# consecutive seeds hold what one part with all the episodes would.
define record_part
	$(BIN)/roadsight record env=urban_crossing camera=$(1) episodes=$(4) seed=$(3) record.every=2 hydra.run.dir=$(DATA)/$(1)/urban_$(2)
	$(BIN)/roadsight record env=highway_hazards camera=$(1) episodes=$(6) seed=$(5) hydra.run.dir=$(DATA)/$(1)/hazards_$(2)
endef
# $(1) camera, $(2) split, $(3) first seed (urban and highway), $(4) urban, $(5) highway episodes
record_split = $(call record_part,$(1),$(2),$(3),$(4),$(3),$(5))

# the extra front train parts trainN (N >= 2), 150 + 150 episodes from seed 150 x (N - 1)
define newline


endef
extra_train_seed = $(shell echo $$(( 150 * ($(patsubst train%,%,$(1)) - 1) )))
record_extra_train = $(call record_split,$(1),$(2),$(call extra_train_seed,$(2)),150,150)

# train episodes (urban, highway) per camera: the front camera's objects are small, it gets more
TRAIN_EPISODES_bev := 30 24
TRAIN_EPISODES_front := 150 150
TRAIN_EPISODES_surround := 40 40
train_episodes = $(word $(2),$(TRAIN_EPISODES_$(1)))
# The front camera has more parts: train2 (seeds 150..299) doubled its train frames to 17,247,
# train3 (seeds 300..449) and train4 (450..599) make them 34,330 (the medium checkpoint's; the
# small one was trained on the first two); val2 (seeds 1005.. urban, 1004.. highway) makes its
# val split 1,124 frames, enough to tell two recipes apart (the 288 frames of val alone could
# not).
TRAIN_PARTS_bev := train
TRAIN_PARTS_front := train train2 train3 train4
TRAIN_PARTS_front_small := train train2
TRAIN_PARTS_surround := train
VAL_PARTS_bev := val
VAL_PARTS_front := val val2
VAL_PARTS_surround := val

datasets-%: $(STAMP)
	$(call record_split,$*,train,0,$(call train_episodes,$*,1),$(call train_episodes,$*,2))
	$(call record_split,$*,val,1000,5,4)
	$(call record_split,$*,test,2000,8,6)
	$(foreach p,$(filter-out train,$(TRAIN_PARTS_$*)),$(call record_extra_train,$*,$(p))$(newline))
	$(if $(filter val2,$(VAL_PARTS_$*)),$(call record_part,$*,val2,1005,15,1004,12))

# The shipped checkpoints: trained on the train split, best.pt chosen on val, scored on test.
PREPROCESS_bev := default
PREPROCESS_front := front
PREPROCESS_surround := $(PREPROCESS_front)
EPOCHS_bev := 24
EPOCHS_front_stage1 := 4
EPOCHS_front := 2
EPOCHS_front_small := 6
EPOCHS_surround := 4
# the front camera's far objects are 2-12 px high: heads at stride 2 instead of 4, and a GIoU
# loss on top of the L1 terms, so that the box of a 3 px object is fitted as tightly as a large one
PINHOLE_ARGS := detector.out_stride=2 loss.giou_weight=1.0
# front: the medium detector (744,415 parameters); front_small: the small one (252,823), the
# previous front default, about half the latency (checkpoint=models/detector_front_small.pt)
MEDIUM_PINHOLE_ARGS := detector=medium $(PINHOLE_ARGS)
# bev_tiny: the tiny detector (29,343 parameters) on the bev data, the same recipe: about a fifth
# of the small one's latency, for training policies with perception in the loop when speed
# matters more than the last points of recall (perception.checkpoint=models/detector_bev_tiny.pt)
CAMERA_bev_tiny := bev
TRAIN_ARGS_bev_tiny := detector=tiny
EPOCHS_bev_tiny := $(EPOCHS_bev)
TRAIN_ARGS_front_stage1 := $(MEDIUM_PINHOLE_ARGS)
TRAIN_ARGS_front_small := $(PINHOLE_ARGS)
CAMERA_front_small := front
# front is trained in two stages on the same data: 4 epochs from scratch (front_stage1), then 2
# more epochs from its best.pt at a third of the peak LR, with fresh augmentation draws (seed=1)
CAMERA_front_stage1 := front
FRONT_STAGE1 ?= outputs/init/detector_front_stage1.pt
# the shipped checkpoint's stage 1 (FRONT_STAGE1=$(FRONT_STAGE1_SHIPPED) skips training stage 1)
FRONT_STAGE1_SHIPPED := outputs/git/7f40eb2/detector_front.pt
TRAIN_ARGS_front := $(TRAIN_ARGS_front_stage1) lr=1e-3 seed=1
INIT_front := $(FRONT_STAGE1)
# the surround rig (front, left, right, rear; 320x160 pinholes like front): a front checkpoint,
# fine-tuned on the rig's four views (a front model alone finds rear vehicles at AP50 0.14). The
# shipped one started from the front checkpoint of commit b02e6b6 (medium, three train parts),
# which this recipe takes from git history; SURROUND_INIT=models/detector_front.pt starts from
# today's.
SURROUND_INIT ?= outputs/git/b02e6b6/detector_front.pt
# a checkpoint shipped at an earlier commit, from git history: outputs/git/<commit>/detector_<name>.pt
outputs/git/%.pt:
	mkdir -p $(@D) && git show $(subst /,:models/,$*).pt > $@.tmp && mv $@.tmp $@
TRAIN_ARGS_surround := $(MEDIUM_PINHOLE_ARGS) lr=1e-3
INIT_surround := $(SURROUND_INIT)
comma := ,
space := $(subst ,, )
# $(1) camera, $(2) config key, $(3) split parts -> "key=[urban_part,hazards_part,...]"
splits = "$(2)=[$(subst $(space),$(comma),$(strip $(foreach p,$(3),$(DATA)/$(1)/urban_$(p) $(DATA)/$(1)/hazards_$(p))))]"

# a checkpoint's camera (its data): its own name, or CAMERA_<name> for a second one of a camera
camera_of = $(or $(CAMERA_$(1)),$(1))
# $(1) setting, $(2) checkpoint name: <setting>_<name>, else its camera's (front_small's preprocess)
setting_of = $(or $($(1)_$(2)),$($(1)_$(call camera_of,$(2))))

# $(1) checkpoint name: make the checkpoint it starts from (INIT_<name>, if any: made here, not
# as a prerequisite, so that a newly shipped front checkpoint does not make the surround one stale
# and a docs picture of a shipped checkpoint trains nothing; a shipped checkpoint is retrained on
# purpose: `rm models/detector_<name>.pt` (git keeps it), then make it), train it into
# outputs/detector_<name>, then copy its best.pt to $@
define train_checkpoint
	$(if $(INIT_$(1)),$(MAKE) --no-print-directory $(INIT_$(1)))
	$(BIN)/roadsight train-detector preprocess=$(call setting_of,PREPROCESS,$(1)) epochs=$(EPOCHS_$(1)) $(TRAIN_ARGS_$(1)) $(if $(INIT_$(1)),init=$(INIT_$(1))) workers=1 \
	  $(call splits,$(call camera_of,$(1)),data,$(call setting_of,TRAIN_PARTS,$(1))) \
	  $(call splits,$(call camera_of,$(1)),val_data,val) hydra.run.dir=outputs/detector_$(1)
	mkdir -p $(@D) && cp outputs/detector_$(1)/best.pt $@
endef
models/detector_%.pt: | $(STAMP)
	$(call train_checkpoint,$*)
# a checkpoint that only starts another one (outputs/init/detector_front_stage1.pt)
outputs/init/detector_%.pt: | $(STAMP)
	$(call train_checkpoint,$*)

# The README's training-curve plot, from the histories the shipped checkpoints carry (each up to
# the epoch it was kept at), so any checkout can redraw it; a checkpoint trained in stages lists
# them in order (front: its stage 1 from git history, then the shipped one)
TRAINING_CURVES := bev front surround
TRAINING_STAGES_front := $(FRONT_STAGE1_SHIPPED) models/detector_front.pt
training_stages = $(or $(TRAINING_STAGES_$(1)),models/detector_$(1).pt)
docs/detector_training.png: $(foreach c,$(TRAINING_CURVES),$(call training_stages,$(c)))
	$(BIN)/python -c "from perception.report import plot_training; \
	  plot_training({$(foreach c,$(TRAINING_CURVES),'$(c)': [$(foreach f,$(call training_stages,$(c)),'$(f)',)],)}, '$@')"

# The README's AP-by-distance plot, from the two clean test-split scores (make score-detector-%)
docs/detector_range.png: outputs/detector_bev_test/metrics.json outputs/detector_front_test/metrics.json
	$(BIN)/python -c "from perception.report import plot_range; \
	  plot_range({'bev': 'outputs/detector_bev_test', 'front': 'outputs/detector_front_test'}, '$@')"

# Stills of a camera's shipped detector on its urban test split (README results), by frame index:
# four front frames; one instant of the surround rig (front, left / right, rear)
STILLS_front := 41, 129, 204, 292
STILLS_surround := 520, 521, 522, 523
docs/detect_%_example.png: models/detector_%.pt
	$(BIN)/roadsight detect camera=$* source=$(DATA)/$*/urban_test/images \
	  hydra.run.dir=outputs/detect_$*_example
	$(BIN)/python -c "from perception.report import video_stills; \
	  video_stills('outputs/detect_$*_example/detections.mp4', [$(STILLS_$*)], '$@')"

# A checkpoint on the whole val split (every part), to compare training recipes before the test
# split is looked at: make score-val-front CHECKPOINT=outputs/<run>/best.pt (default: shipped)
CHECKPOINT ?=
score-val-%: $(STAMP)
	$(BIN)/roadsight val-detector camera=$* $(if $(CHECKPOINT),checkpoint=$(CHECKPOINT)) \
	  $(call splits,$*,data,$(VAL_PARTS_$*)) hydra.run.dir=outputs/detector_$*_val

# Test-split scores of the shipped checkpoint, clean (with 95% bootstrap intervals over the test
# episodes) and under corruptions (a Hydra multirun).
CORRUPTIONS ?= gaussian_noise,motion_blur,fog,rain
SCORE_ARGS ?=
score-detector-%: $(STAMP)
	$(BIN)/roadsight val-detector camera=$* $(call splits,$*,data,test) bootstrap=1000 $(SCORE_ARGS) hydra.run.dir=outputs/detector_$*_test
	$(BIN)/roadsight val-detector camera=$* $(call splits,$*,data,test) min_height=12 $(SCORE_ARGS) hydra.run.dir=outputs/detector_$*_test_h12
	$(BIN)/roadsight val-detector -m camera=$* $(call splits,$*,data,test) $(SCORE_ARGS) corruption=single \
	  corruption.name=$(CORRUPTIONS) corruption.severity=1,3,5 hydra.sweep.dir=outputs/detector_$*_corrupt
	$(BIN)/roadsight summarize sweep=outputs/detector_$*_corrupt \
	  "metrics=[mAP50,per_class.vehicle.AP50,per_class.pedestrian.AP50,per_class.obstacle.AP50]"
