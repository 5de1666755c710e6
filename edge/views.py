"""View (class) name sets. Class ids are positions in these tuples."""

# NED-12, in the order the NED paper's 12-class subset uses (class id = index).
NED12 = (
    "APICAL_5C",
    "APICAL_4C_LVRV",
    "APICAL_2C_LV",
    "APICAL_3C_LV",
    "PLAX_LV",
    "PLAX_RV_IN",
    "PLAX_RV_OUT",
    "PSAX_AV",
    "PSAX_MV",
    "PSAX_PAPS",
    "PSAX_APEX",
    "APICAL_3C_RV",
)

# NED-16 adds four views that the paper drops from its main experiments.
NED16 = NED12 + (
    "PULMONARY_ARTERY_BRANCH",
    "DUCTAL_CUT",
    "AORTIC_ARCH",
    "SUBCOSTAL_IVC",
)

# EV9V's nine views (Echocardiographic Videos of Nine Views), named and ordered as its public
# reference code labels them (bgx666/stfm data_utils/dataloader.py INDEXOFLABEL: class id = index).
# Its README glosses them: PLHLA parasternal long axis; PMASA parasternal short axis at the mitral
# valve; PMVLSA short axis at the papillary muscles; PASA short axis at the aortic valve; A4C and
# A5C apical 4- and 5-chamber; PMPALA and PPMLSA two further parasternal views; SC4C subcostal
# 4-chamber. The phantom draws NED views only, so this set is for EV9V-layout datasets.
EV9V = ("PLHLA", "PMASA", "PMVLSA", "PASA", "A4C", "A5C", "PMPALA", "PPMLSA", "SC4C")

CLASS_SETS = {"ned12": NED12, "ned16": NED16, "ev9v": EV9V}
