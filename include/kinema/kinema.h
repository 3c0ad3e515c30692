/* Kinema: one include for the whole public API. */
#ifndef KINEMA_KINEMA_H
#define KINEMA_KINEMA_H
#include "kinema/core.h"
#include "kinema/calib.h"
#include "kinema/capture.h"
#include "kinema/tracking.h"
#include "kinema/skeleton.h"
#include "kinema/gesture.h"
#include "kinema/transport.h"
#include "kinema/cv.h"
#include "kinema/pipeline.h"
#endif
