/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virtio-balloon's free page bitmap: what virtio_balloon_main.c calls.
 */
#ifndef _VIRTIO_BALLOON_FPB_H
#define _VIRTIO_BALLOON_FPB_H

#include <linux/virtio.h>

struct virtio_balloon_fpb;

#ifdef CONFIG_VIRTIO_BALLOON_FREE_PAGE_BITMAP
void virtio_balloon_fpb_validate(struct virtio_device *vdev);
struct virtio_balloon_fpb *virtio_balloon_fpb_start(struct virtio_device *vdev,
						    struct virtqueue *vq);
void virtio_balloon_fpb_config_changed(struct virtio_balloon_fpb *fpb);
void virtio_balloon_fpb_vq_done(struct virtio_balloon_fpb *fpb);
void virtio_balloon_fpb_stop(struct virtio_balloon_fpb *fpb);
void virtio_balloon_fpb_free(struct virtio_balloon_fpb *fpb);
#else
static inline void virtio_balloon_fpb_validate(struct virtio_device *vdev)
{
}

static inline struct virtio_balloon_fpb *
virtio_balloon_fpb_start(struct virtio_device *vdev, struct virtqueue *vq)
{
	return NULL;
}

static inline void virtio_balloon_fpb_config_changed(struct virtio_balloon_fpb *fpb)
{
}

static inline void virtio_balloon_fpb_vq_done(struct virtio_balloon_fpb *fpb)
{
}

static inline void virtio_balloon_fpb_stop(struct virtio_balloon_fpb *fpb)
{
}

static inline void virtio_balloon_fpb_free(struct virtio_balloon_fpb *fpb)
{
}
#endif

#if IS_ENABLED(CONFIG_KUNIT)
#include <linux/free_page_bitmap.h>
#include <linux/virtio_balloon.h>

size_t virtio_balloon_fpb_desc_bytes(const struct free_page_bitmap_layout *layout);
void virtio_balloon_fpb_encode(struct virtio_balloon_fpb_header *hdr, void *desc,
			       phys_addr_t desc_gpa,
			       const struct free_page_bitmap_layout *layout);
void virtio_balloon_fpb_write_begin(struct virtio_balloon_fpb_header *hdr);
void virtio_balloon_fpb_write_end(struct virtio_balloon_fpb_header *hdr,
				  bool active);
#endif

#endif /* _VIRTIO_BALLOON_FPB_H */
