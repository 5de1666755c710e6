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

CLASS_SETS = {"ned12": NED12, "ned16": NED16}
