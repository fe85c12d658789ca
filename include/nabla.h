/* nabla.h: everything public in one include. */
#ifndef NABLA_H
#define NABLA_H

#include "nabla/core.h"
#include "nabla/version.h"
#include "nabla/tensor.h"
#include "nabla/autograd.h"
#include "nabla/ops.h"
#include "nabla/gradcheck.h"
#include "nabla/conv.h"
#include "nabla/functional.h"
#include "nabla/optim.h"
#include "nabla/io.h"
#include "nabla/nn.h"
#include "nabla/init.h"
#include "nabla/clip_grad.h"
#include "nabla/data.h"

#endif
